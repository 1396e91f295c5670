import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", "charts/", "certs/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        URL: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      // Prettier (npm run format) wraps code at 120; this catches what it leaves: comments.
      // Long strings, template literals and regular expressions stay whole, to be searchable.
      "max-len": [
        "error",
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // The dependency rule (README "Layout"): injection/ is the pure core. It imports config and
    // kube types, its own modules, `yaml` and `node:net`'s address parsing; no I/O, no server,
    // no client, no clock, no process state. config/ reads files but knows nothing of serving.
    files: ["src/injection/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^node:(?!net$)",
              message: "src/injection/ is pure: no Node I/O modules (node:net only for isIP).",
            },
            {
              regex: "^(express|pino|prom-client|node-forge|@kubernetes/client-node|fast-json-patch)$",
              message: "src/injection/ is pure: no server, logger, metrics, crypto or cluster client.",
            },
            {
              regex: "^\\.\\./(?!config/|kube/types\\.js$)",
              message: "src/injection/ imports only config, kube types and itself.",
            },
          ],
        },
      ],
      "no-restricted-globals": [
        "error",
        { name: "process", message: "src/injection/ is pure: no process state; take it as a parameter." },
        { name: "setTimeout", message: "src/injection/ is pure: no timers." },
        { name: "setInterval", message: "src/injection/ is pure: no timers." },
        { name: "console", message: "src/injection/ is pure: return warnings, do not print." },
      ],
      "no-restricted-syntax": [
        "error",
        {
          selector: "MemberExpression[object.name='Date'][property.name='now']",
          message: "src/injection/ is pure: no clock.",
        },
        { selector: "NewExpression[callee.name='Date']", message: "src/injection/ is pure: no clock." },
        {
          selector: "MemberExpression[object.name='Math'][property.name='random']",
          message: "src/injection/ is pure: no randomness.",
        },
      ],
    },
  },
  {
    files: ["src/config/**/*.ts", "src/kube/types.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(express|pino|prom-client|node-forge|@kubernetes/client-node)$",
              message: "config/ and kube types know nothing of serving, logging, certificates or the cluster client.",
            },
            {
              regex: "^\\.\\./(admission|certs|telemetry|workers|main|cli|preview)",
              message: "config/ and kube types sit below the layers that serve.",
            },
          ],
        },
      ],
    },
  },
  {
    // The admission gate and its error registry are pure, below both the webhook (the rest of
    // admission/) and the preview: the engine, config and kube types, and each other; no I/O,
    // no server, no logger, no metrics, no client.
    files: ["src/admission/gate.ts", "src/admission/errors.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "^node:", message: "the admission gate is pure: no Node I/O modules." },
            {
              regex: "^(express|pino|prom-client|node-forge|@kubernetes/client-node|fast-json-patch)$",
              message: "the admission gate is pure: no server, logger, metrics, crypto or cluster client.",
            },
            {
              regex: "^\\.\\./(?!injection/|config/types\\.js$|kube/types\\.js$)",
              message: "the admission gate imports only the engine, config and kube types.",
            },
            {
              regex: "^\\./(?!(gate|errors)\\.js$)",
              message: "the admission gate imports only itself and the error registry from admission/.",
            },
          ],
        },
      ],
      "no-restricted-globals": [
        "error",
        { name: "process", message: "the admission gate is pure: no process state." },
        { name: "setTimeout", message: "the admission gate is pure: no timers." },
        { name: "setInterval", message: "the admission gate is pure: no timers." },
        { name: "console", message: "the admission gate is pure: it returns, it does not print." },
      ],
    },
  },
  {
    // The MutatingAdmissionPolicy renderer is pure: config in, objects out. It stands on the
    // engine (whose parts it reads back), config and kube types; no I/O, server or client.
    files: ["src/policy/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "^node:(?!util$)", message: "src/policy/ is pure: no Node I/O modules (node:util only)." },
            {
              regex: "^(express|pino|prom-client|node-forge|@kubernetes/client-node|fast-json-patch)$",
              message: "src/policy/ is pure: no server, logger, metrics, crypto or cluster client.",
            },
            {
              regex: "^\\.\\./(?!injection/|config/|kube/types\\.js$)",
              message: "src/policy/ imports only the engine, config, kube types and itself.",
            },
          ],
        },
      ],
      "no-restricted-globals": [
        "error",
        { name: "process", message: "src/policy/ is pure: no process state." },
        { name: "console", message: "src/policy/ is pure: it returns, it does not print." },
      ],
    },
  },
  {
    // The preview (and its document walk, which compare shares) stands on the engine and the
    // admission gate, beside the webhook, not on it:
    // of admission/ it imports only the gate and the error registry; no server, no metrics.
    files: ["src/preview.ts", "src/documents.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(express|pino|prom-client|node-forge|@kubernetes/client-node)$",
              message: "the preview use case knows nothing of serving, logging, certificates or the cluster client.",
            },
            {
              regex: "^\\./admission/(?!(gate|errors)\\.js$)",
              message:
                "the preview imports only the gate and the error registry of admission/: the rest sits above it.",
            },
            {
              regex: "^\\./(certs|telemetry|workers|check)/|^\\./(main|cli)\\.js$",
              message: "the preview sits below the layers that serve.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
  {
    // Generated (test/oracle/proxy-config-schema.py): one line per message, as the generator writes it.
    files: ["src/injection/proxy-config-schema.ts"],
    rules: { "max-len": "off" },
  },
);
