// What a command says when Node's parseArgs refuses its arguments: the command, the option or
// argument at fault, and where the command's options are listed, instead of Node's message
// ("Unknown option '--x'. To specify a positional argument starting with a '-', …").

/** Node's parseArgs error codes. */
const PARSE_ARGS_CODES = new Set([
  "ERR_PARSE_ARGS_UNKNOWN_OPTION",
  "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
  "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL",
]);

/** Whether `e` is parseArgs refusing the arguments. */
export function isParseArgsError(e: unknown): e is Error {
  return e instanceof Error && "code" in e && typeof e.code === "string" && PARSE_ARGS_CODES.has(e.code);
}

/**
 * The line a command prints for parseArgs' error `e`: `inject: unknown option --bogus (see
 * "sidecar-injector help inject")`. `command` is the command as typed (`config import`); its
 * first word names the help. Anything else is said as its message, after the command.
 */
export function parseArgsProblem(command: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const help = `(see "sidecar-injector help ${command.split(" ", 1)[0] ?? command}")`;
  if (!isParseArgsError(e)) return `${command}: ${message}`;
  // Node quotes what it refuses in single quotes, as given (quotes inside and all): "Unknown
  // option '--it's'" (with allowPositionals, ". To specify a positional argument …" after it),
  // "Unexpected argument 'x'. This command …", "Option '-q, --quiet' does not take an argument".
  const given =
    /^Unknown option '(.*?)'(?:\. To specify a positional .*)?$/s.exec(message)?.[1] ??
    /^Unexpected argument '(.*?)'\. This command .*$/s.exec(message)?.[1];
  const quoted = /^Option '([^']*)'/.exec(message)?.[1] ?? "";
  const option =
    quoted
      .replace(/ <value>$/, "")
      .split(", ")
      .at(-1) ?? quoted;
  let problem: string;
  if (message.startsWith("Unknown option")) problem = `unknown option ${given ?? ""}`;
  else if (message.startsWith("Unexpected argument")) problem = `unexpected argument ${JSON.stringify(given ?? "")}`;
  else if (message.includes("does not take an argument")) problem = `${option} takes no value`;
  else if (message.includes("argument is ambiguous")) {
    // Node's last line says how to give a value that starts with "-": '--namespace=-XYZ' or '-n-XYZ'.
    const how = /use (.+)\.$/.exec(message)?.[1]?.replaceAll("'", "").replaceAll("-XYZ", "-VALUE");
    problem = `${option} needs a value${how === undefined ? "" : ` (one that starts with "-": ${how})`}`;
  } else if (message.includes("argument missing")) problem = `${option} needs a value`;
  else problem = message.split("\n", 1)[0] ?? message;
  return `${command}: ${problem} ${help}`;
}
