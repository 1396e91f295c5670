// What is wrong with a file the user named, in words, instead of Node's
// "ENOENT: no such file or directory, open '…'": the commands put the file's name before it.

export function fileProblem(e: unknown): string {
  const code = e instanceof Error && "code" in e ? e.code : undefined;
  if (code === "ENOENT") return "no such file or directory";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "is a directory";
  return e instanceof Error ? e.message : String(e);
}
