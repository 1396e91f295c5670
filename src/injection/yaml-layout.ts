// Continuation lines as go-yaml v2 reads them. Inside a quoted scalar or a flow collection
// ([…], {…}), go-yaml (what kubectl and istioctl kube-inject read manifests with, through
// sigs.k8s.io/yaml) does not look at indentation: a line of `a: 'x` can go on with `y'` at
// any indent, and `command: ["sh",` with `"-c"]` under its key. YAML 1.2, and the `yaml`
// parser, want such lines indented past their block, and refuse the document otherwise.
//
// `relaidContinuations` indents each such line past the column of the quote or bracket that
// opened it. That changes no value: a quoted scalar's line breaks fold with the white space
// around them, and white space between a flow collection's items means nothing. A line at
// column 0 that starts with a document marker (`---`, `...`) is left as it is: go-yaml ends
// the document there, inside a quote or not, and so refuses it, as the `yaml` parser will.
//
// The scan is YAML's lexical structure, enough to tell where quoted scalars and flow
// collections begin and end: comments, block scalars (whose lines are text), plain scalars
// (a quote or bracket inside one is text), a quote only where a scalar can start. It runs
// only on text the parser refused, and its result is used only if the parser takes it.

const LF = 10;
const SPACE = 32;
const TAB = 9;
const HASH = 35;

function blank(c: number): boolean {
  return c === SPACE || c === TAB || c === LF || c === 13 || Number.isNaN(c);
}

/** Characters after which, in flow context, a scalar starts (a quote opens a quoted one). */
function flowScalarStart(c: number): boolean {
  return c === 91 /* [ */ || c === 123 /* { */ || c === 44 /* , */ || c === 58 /* : */ || c === 63; /* ? */
}

/**
 * `text` with the continuation lines of its quoted scalars and flow collections indented past
 * the quote or bracket that opened them; undefined when no line needed it.
 */
export function relaidContinuations(text: string): string | undefined {
  const lines = text.split("\n");
  /** Open quote (34 or 39) at the end of the line before, or 0. */
  let quote = 0;
  /** Open flow collections at the end of the line before. */
  let flow = 0;
  /** The column the open quote or outermost open bracket was at. */
  let opener = 0;
  /** Indent of the line that opened a block scalar; its more indented lines are text. */
  let blockScalarParent = -1;
  let changed = false;
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l] ?? "";
    let indent = 0;
    while (line.charCodeAt(indent) === SPACE) indent++;
    const continuing = quote !== 0 || flow > 0;
    if (continuing) {
      const marker = /^(?:---|\.\.\.)(?:[ \t\r]|$)/.test(line);
      if (!marker && indent <= opener && indent < line.length) {
        lines[l] = " ".repeat(opener + 1 - indent) + line;
        changed = true;
      }
      if (marker) {
        quote = 0;
        flow = 0;
      }
    } else {
      if (blockScalarParent >= 0) {
        if (indent >= line.length || indent > blockScalarParent) continue;
        blockScalarParent = -1;
      }
      if (/^(?:---|\.\.\.)(?:[ \t\r]|$)/.test(line)) continue;
    }
    // Where a scalar may start: the line's first character, or after "- ", "? ", ": ".
    let scalarStart = !continuing || (flow > 0 && quote === 0);
    let sigEnd = 0;
    let i = continuing ? 0 : indent;
    while (i < line.length) {
      const c = line.charCodeAt(i);
      if (quote !== 0) {
        // To the closing quote: '' is a quote in a single-quoted scalar, \x an escape in a double-quoted one.
        if (quote === 34 && c === 92 /* \ */) i += 2;
        else if (c === quote && quote === 39 && line.charCodeAt(i + 1) === 39) i += 2;
        else if (c === quote) {
          quote = 0;
          i++;
          sigEnd = i;
          scalarStart = false;
        } else i++;
        continue;
      }
      if (c === SPACE || c === TAB || c === 13) {
        i++;
        continue;
      }
      if (c === HASH && (i === 0 || blank(line.charCodeAt(i - 1)))) break;
      if (flow > 0) {
        if (c === 34 || c === 39) {
          if (scalarStart) {
            quote = c;
            i++;
            continue;
          }
        } else if (c === 91 || c === 123) flow++;
        else if (c === 93 || c === 125) flow--;
        scalarStart = flow > 0 && flowScalarStart(c);
        i++;
        sigEnd = i;
        continue;
      }
      if (scalarStart && (c === 34 || c === 39)) {
        quote = c;
        opener = i;
        i++;
        continue;
      }
      if (scalarStart && (c === 91 || c === 123)) {
        flow = 1;
        opener = i;
        i++;
        sigEnd = i;
        continue;
      }
      // "- ", "? ", ": " (or at the line's end): a scalar may start after them.
      if ((c === 45 /* - */ || c === 63 /* ? */ || c === 58) /* : */ && blank(line.charCodeAt(i + 1))) {
        scalarStart = true;
        i++;
        sigEnd = i;
        continue;
      }
      // An anchor or a tag before the scalar: it still may start after it.
      if ((c === 38 /* & */ || c === 33) /* ! */ && scalarStart) {
        while (i < line.length && !blank(line.charCodeAt(i))) i++;
        sigEnd = i;
        continue;
      }
      // A plain scalar (or a key): to the next ": " or " #"; quotes and brackets in it are text.
      scalarStart = false;
      i++;
      sigEnd = i;
    }
    // "key: |", "- >-", "key: |2+": the following, more indented lines are scalar content.
    if (quote === 0 && flow === 0 && /(?:^|[\s:-])[|>][-+1-9]*$/.test(line.slice(Math.max(0, sigEnd - 8), sigEnd)))
      blockScalarParent = indent;
  }
  return changed ? lines.join("\n") : undefined;
}
