// The help of `config import`, apart from its code: `--help` and completion read it without
// loading the YAML parser.
export const CONFIG_IMPORT_USAGE = `Usage: sidecar-injector config import -f FILE|- [options]

Reads Istio's injection settings from its ConfigMaps — istio-sidecar-injector[-REV]
(values, config) and istio[-REV] (mesh) — as kubectl get configmap -o yaml or helm template
prints them (several documents, a List), or from Helm values files of Istio's istiod chart
(merged in order, as helm -f does) or an IstioOperator, as the chart at the pinned commit
would render them; and writes the equivalent config of this injector.
Everything Istio would do that this injector cannot (a custom or modified injection template,
a value with no counterpart, a value that is not Istio's) is listed on standard error, by its
path, with what to do instead; so are Istio settings that do not change an injected Pod.

Exit status: 0 imported; 1 a setting cannot be honoured (nothing is written, unless
--allow-unsupported); 2 bad arguments or input, or a file that cannot be read.

Options:
  -f, --filename FILE     a file holding the ConfigMaps (or values, or an IstioOperator), or -
                          for standard input; repeatable
                          (required)
      --revision REV      the revision whose ConfigMaps to read, when the input holds several
                          (default: the only one present; "default" is istio-sidecar-injector)
  -o, --output FILE       write the config here instead of standard output
      --allow-unsupported write the config even when some settings cannot be honoured
  -h, --help              this help
`;
