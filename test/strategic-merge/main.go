// Kubernetes' strategic merge as Istio's injector applies it (pkg/kube/inject/webhook.go,
// applyOverlayYAML and applyOverlay at Istio 86c9f01, k8s.io/apimachinery v0.36.1 as Istio
// pins it): each patch merged over the Pod in turn with corev1.Pod's schema
// (StrategicMergeMapPatchUsingLookupPatchMeta), the result read back into a corev1.Pod and
// written again before the next, as Istio does between its templates and the Pod's overrides.
// The original is first read into a corev1.Pod and written again, as Istio has the Pod.
//
// Reads lines {"id","original","patches"} on stdin; writes each line back with "expected" (the
// merged Pod) or "error". regen.sh runs it over generate.ts's cases into cases.jsonl, which
// test/unit/injection/strategic-merge.test.ts checks merge.ts against.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

type testCase struct {
	ID       string            `json:"id"`
	Original json.RawMessage   `json:"original"`
	Patches  []json.RawMessage `json:"patches"`
	Expected json.RawMessage   `json:"expected,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// asIstioHasIt is the Pod read into a corev1.Pod and written again.
func asIstioHasIt(doc []byte) ([]byte, error) {
	var pod corev1.Pod
	if err := json.Unmarshal(doc, &pod); err != nil {
		return nil, err
	}
	return json.Marshal(&pod)
}

func apply(original []byte, patches []json.RawMessage) ([]byte, error) {
	schema, err := strategicpatch.NewPatchMetaFromStruct(corev1.Pod{})
	if err != nil {
		return nil, err
	}
	current, err := asIstioHasIt(original)
	if err != nil {
		return nil, err
	}
	for _, p := range patches {
		var o, pm map[string]any
		if err := json.Unmarshal(current, &o); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(p, &pm); err != nil {
			return nil, err
		}
		merged, err := strategicpatch.StrategicMergeMapPatchUsingLookupPatchMeta(o, pm, schema)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(merged)
		if err != nil {
			return nil, err
		}
		if current, err = asIstioHasIt(b); err != nil {
			return nil, err
		}
	}
	return current, nil
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var c testCase
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if r, err := apply(c.Original, c.Patches); err != nil {
			c.Error = err.Error()
		} else {
			c.Expected = r
		}
		line, err := json.Marshal(c)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out.Write(append(line, '\n'))
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
