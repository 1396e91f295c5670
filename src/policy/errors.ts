// The one error of the policy renderer: the config asks for an injection the policy cannot
// express in CEL identically to the webhook (the message says what), or an option is invalid.
export class PolicyRenderError extends Error {
  readonly code = "ERR_POLICY_RENDER";
  constructor(message: string) {
    super(message);
    this.name = "PolicyRenderError";
  }
}
