// Adds to each of the oracle's answers (`{"id","output"|"refusal","warnings"}` lines on standard
// input) its output read as documents (`docs`), as compareInjected reads it (parseManifest), so
// the test does not spend seconds reading YAML. The output is kept as Istio printed it.
//   oracle --jsonl -f inputs.jsonl | node --import tsx test/realworld/record.ts > answers.jsonl
import { createInterface } from "node:readline";
import { parseManifest } from "../../src/manifest.js";

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim() === "") continue;
  const answer = JSON.parse(line) as { id: string; output?: string; refusal?: string };
  const docs =
    typeof answer.output === "string" && !answer.refusal ? parseManifest(answer.output, answer.id) : undefined;
  process.stdout.write(`${JSON.stringify(docs === undefined ? answer : { ...answer, docs })}\n`);
}
