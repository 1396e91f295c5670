// Command oracle runs Istio's own sidecar injector (istio.io/istio/pkg/kube/inject, the code
// behind `istioctl kube-inject`) with the settings of Istio's TestInjection default cases, so
// that our injector can be compared with it on any manifest.
//
// The settings are built the way pkg/kube/inject/webhook_test.go's getInjectionSettings
// builds them: the charts under <istio>/manifests are rendered by the operator with
// `installPackagePath=<istio>/manifests profile=empty components.pilot.enabled=true`, and the
// istio-sidecar-injector ConfigMap (config + values) and the istio ConfigMap (mesh, applied
// over mesh.DefaultMeshConfig()) are read back. The injector is TestInjection's mockInjector:
// a fake Kubernetes client holding the test's two nodes (kubelet v1.33.0 and v1.34.0, so
// ENABLE_NATIVE_SIDECARS=auto detects native sidecars) and its test-ns namespace, and whose
// Inject returns no patch, so IntoResourceFile renders locally. The output is what
// TestInjection compares with its golden files: IntoResourceFile's YAML after
// util.StripVersion.
//
// Usage:
//
//	oracle [-f FILE|-]        inject one manifest (multi-document YAML); the injected YAML on
//	                          stdout; when Istio refuses, its message on stderr and exit 1
//	oracle --refusal [-f ...] the same, but a refusal is printed on stdout as
//	                          "refused: <message>" and the exit status is 0
//	oracle --jsonl [-f ...]   batch: one JSON object {"id","manifest"} per input line; one
//	                          {"id","output","warnings"} or {"id","refusal"} per output line
//	oracle --settings         print the rendered injection config, values and mesh config
//	oracle --injector-cm FILE --mesh-cm FILE ...
//	                          any of the above with the settings of these two ConfigMaps
//	                          (istio-sidecar-injector and istio, as kubectl get -o yaml or
//	                          helm template give them) instead of the operator's rendering
//	oracle --serve HOST:PORT --tls-cert FILE --tls-key FILE
//	                          serve Istio's injection webhook (Webhook.serveInject on /inject,
//	                          200 on /readyz) over HTTPS until SIGTERM or SIGINT
//
// The Istio checkout is --istio-src, else $ISTIO_SRC, else the path compiled in by build.sh.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/operator/pkg/render"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/mesh/meshwatcher"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/kube/inject"
	"istio.io/istio/pkg/kube/kclient"
	"istio.io/istio/pkg/kube/multicluster"
	istiolog "istio.io/istio/pkg/log"
)

// defaultIstioSrc is set by build.sh (-ldflags -X main.defaultIstioSrc=...).
var defaultIstioSrc = ""

// mockInjector is TestInjection's: it never answers with a patch, so IntoObject injects with
// the local templates, and it hands out the fake client for native-sidecar detection.
type mockInjector struct {
	client kube.Client
}

func (m *mockInjector) Inject(*corev1.Pod, string) ([]byte, error) { return nil, nil }
func (m *mockInjector) GetKubeClient() kube.Client                 { return m.client }

type settings struct {
	config    *inject.Config
	values    inject.ValuesConfig
	valuesRaw string
	mesh      *meshconfig.MeshConfig
}

// loadSettings is getInjectionSettings(t, nil, "") of webhook_test.go.
func loadSettings(istioSrc string) (*settings, error) {
	setFlags := []string{
		"installPackagePath=" + filepath.Join(istioSrc, "manifests"),
		"profile=empty",
		"components.pilot.enabled=true",
	}
	manifests, _, err := render.GenerateManifest(nil, setFlags, false, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to generate manifests: %v", err)
	}
	s := &settings{}
	for _, object := range manifests {
		for _, o := range object.Manifests {
			if o.GetKind() != gvk.ConfigMap.Kind {
				continue
			}
			data, ok := o.Object["data"].(map[string]any)
			if !ok {
				continue
			}
			switch o.GetName() {
			case "istio-sidecar-injector":
				if err := s.setInjector(data); err != nil {
					return nil, err
				}
			case "istio":
				if err := s.setMesh(data); err != nil {
					return nil, err
				}
			}
		}
	}
	if s.config == nil || s.mesh == nil {
		return nil, errors.New("the rendered charts have no istio-sidecar-injector or istio ConfigMap")
	}
	return s, nil
}

// setInjector reads the istio-sidecar-injector ConfigMap's data as getInjectionSettings does.
func (s *settings) setInjector(data map[string]any) error {
	rawConfig, ok1 := data["config"].(string)
	vs, ok2 := data["values"].(string)
	if !ok1 || !ok2 {
		return errors.New("istio-sidecar-injector ConfigMap without config or values")
	}
	vc, err := inject.NewValuesConfig(vs)
	if err != nil {
		return err
	}
	cfg, err := inject.UnmarshalConfig([]byte(rawConfig))
	if err != nil {
		return fmt.Errorf("failed to unmarshal injectionConfig: %v", err)
	}
	s.values = vc
	s.valuesRaw = vs
	s.config = &cfg
	return nil
}

// setMesh reads the istio ConfigMap's mesh over mesh.DefaultMeshConfig(), as istiod does.
func (s *settings) setMesh(data map[string]any) error {
	meshdata, ok := data["mesh"].(string)
	if !ok {
		return errors.New("istio ConfigMap without mesh")
	}
	mc, err := mesh.ApplyMeshConfig(meshdata, mesh.DefaultMeshConfig())
	if err != nil {
		return fmt.Errorf("failed to unmarshal meshconfig: %v", err)
	}
	s.mesh = mc
	return nil
}

// configMapData is the data of the one ConfigMap in file: a ConfigMap as kubectl get -o yaml
// prints it (or a single-document YAML file holding one).
func configMapData(file string) (map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		return nil, fmt.Errorf("%s: not a ConfigMap: %v", file, err)
	}
	if cm.Kind != "ConfigMap" {
		return nil, fmt.Errorf("%s: not a ConfigMap (kind %q)", file, cm.Kind)
	}
	data := map[string]any{}
	for k, v := range cm.Data {
		data[k] = v
	}
	return data, nil
}

// loadSettingsFromConfigMaps takes the settings from given ConfigMaps instead of the operator's
// rendering: those of an installed istiod, or of Istio's chart rendered with helm.
func loadSettingsFromConfigMaps(injectorFile, meshFile string) (*settings, error) {
	s := &settings{}
	data, err := configMapData(injectorFile)
	if err != nil {
		return nil, err
	}
	if err := s.setInjector(data); err != nil {
		return nil, fmt.Errorf("%s: %v", injectorFile, err)
	}
	data, err = configMapData(meshFile)
	if err != nil {
		return nil, err
	}
	if err := s.setMesh(data); err != nil {
		return nil, fmt.Errorf("%s: %v", meshFile, err)
	}
	return s, nil
}

// fakeCluster is the fake cluster of TestInjection: two nodes and the test-ns namespace. The
// client is not started yet.
func fakeCluster() kube.Client {
	objects := []runtime.Object{
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Status:     corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.0"}},
		},
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "node-2"},
			Status:     corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.34.0"}},
		},
		&corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{
				Name: "test-ns",
				Annotations: map[string]string{
					"openshift.io/sa.scc.uid-range":           "1000620000/10000",
					"openshift.io/sa.scc.supplemental-groups": "1000620000/10000",
				},
			},
		},
	}
	return kube.NewFakeClient(objects...)
}

// newInjector is TestInjection's mockInjector on its fake cluster.
func newInjector(stop chan struct{}) *mockInjector {
	client := fakeCluster()
	// The test builds its node and namespace clients before starting the fake client, so the
	// informers IntoObject later asks for are started and synced; do the same.
	_ = kclient.New[*corev1.Node](client)
	_ = kclient.New[*corev1.Namespace](client)
	client.RunAndWait(stop)
	return &mockInjector{client: client}
}

// statusPattern and its replacement are pilot/test/util.StripVersion's.
var statusPattern = regexp.MustCompile("sidecar.istio.io/status: '{\"version\":\"([0-9a-f]+)\",")

const statusReplacement = "sidecar.istio.io/status: '{\"version\":\"\","

func stripVersion(b []byte) []byte {
	return statusPattern.ReplaceAllLiteral(b, []byte(statusReplacement))
}

type result struct {
	output   []byte
	warnings []string
	refusal  string
}

// injectOne is the kube-inject subtest of TestInjection: IntoResourceFile with revision "",
// on a copy of the mesh config (the test deep-copies it per case). A panic inside Istio is a
// refusal too, reported as such, so one odd input cannot stop a batch.
func injectOne(inj *mockInjector, s *settings, manifest []byte) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r = result{refusal: fmt.Sprintf("panic: %v", p)}
		}
	}()
	mc, err := mesh.DeepCopyMeshConfig(s.mesh)
	if err != nil {
		return result{refusal: err.Error()}
	}
	var out bytes.Buffer
	warn := func(w string) { r.warnings = append(r.warnings, strings.TrimSpace(w)) }
	if err := inject.IntoResourceFile(inj, s.config.Templates, s.values, "", mc, bytes.NewReader(manifest), &out, warn); err != nil {
		return result{refusal: stableMessage(err.Error()), warnings: r.warnings}
	}
	r.output = stripVersion(out.Bytes())
	return r
}

var templateList = regexp.MustCompile(`(not found; have )([^\n]*)`)

// stableMessage puts the parts of an Istio error that come from iterating a Go map in a fixed
// order, so that the same input always gets the same message: the lines of a multierror
// ("\t* invalid value ... for annotation ...") and the list of known templates.
func stableMessage(msg string) string {
	msg = templateList.ReplaceAllStringFunc(msg, func(m string) string {
		parts := templateList.FindStringSubmatch(m)
		names := strings.Split(parts[2], ", ")
		sort.Strings(names)
		return parts[1] + strings.Join(names, ", ")
	})
	lines := strings.Split(msg, "\n")
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "\t* ") {
			j++
		}
		if j > i {
			sort.Strings(lines[i:j])
			i = j
		} else {
			i++
		}
	}
	return strings.Join(lines, "\n")
}

type batchIn struct {
	ID       string `json:"id"`
	Manifest string `json:"manifest"`
}

type batchOut struct {
	ID       string   `json:"id"`
	Output   string   `json:"output,omitempty"`
	Refusal  string   `json:"refusal,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

func runBatch(inj *mockInjector, s *settings, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c batchIn
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return fmt.Errorf("line %d: not a JSON object {\"id\",\"manifest\"}: %v", line, err)
		}
		r := injectOne(inj, s, []byte(c.Manifest))
		o := batchOut{ID: c.ID, Output: string(r.output), Refusal: r.refusal, Warnings: r.warnings}
		if err := enc.Encode(o); err != nil {
			return err
		}
	}
	return sc.Err()
}

func main() {
	file := flag.String("f", "-", "manifest file, - for stdin")
	refusal := flag.Bool("refusal", false, "print a refusal on stdout as \"refused: <message>\" and exit 0")
	jsonl := flag.Bool("jsonl", false, "batch mode: JSON lines {id,manifest} in, {id,output|refusal,warnings} out")
	showSettings := flag.Bool("settings", false, "print the injection settings and exit")
	serveAddr := flag.String("serve", "", "serve Istio's injection webhook over HTTPS on this address (host:port)")
	tlsCert := flag.String("tls-cert", "", "with --serve: the serving certificate (PEM)")
	tlsKey := flag.String("tls-key", "", "with --serve: the serving certificate's key (PEM)")
	istioSrc := flag.String("istio-src", "", "Istio checkout (default $ISTIO_SRC, else the build's)")
	injectorCM := flag.String("injector-cm", "", "with --mesh-cm: the istio-sidecar-injector ConfigMap (YAML) to take the settings from, instead of the operator's rendering")
	meshCM := flag.String("mesh-cm", "", "with --injector-cm: the istio ConfigMap (YAML)")
	flag.Parse()

	// Istio logs to stdout at info level; stdout is the oracle's answer, so its log goes to
	// stderr, errors only.
	opts := istiolog.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.ErrorOutputPaths = []string{"stderr"}
	opts.SetDefaultOutputLevel("all", istiolog.ErrorLevel)
	_ = istiolog.Configure(opts)

	var s *settings
	var err error
	if *injectorCM != "" || *meshCM != "" {
		if *injectorCM == "" || *meshCM == "" {
			fail(2, "oracle: --injector-cm and --mesh-cm go together")
		}
		s, err = loadSettingsFromConfigMaps(*injectorCM, *meshCM)
	} else {
		src := *istioSrc
		if src == "" {
			src = os.Getenv("ISTIO_SRC")
		}
		if src == "" {
			src = defaultIstioSrc
		}
		if src == "" {
			fail(2, "oracle: no Istio checkout: pass --istio-src or set ISTIO_SRC")
		}
		s, err = loadSettings(src)
	}
	if err != nil {
		fail(2, "oracle: %v", err)
	}
	if *showSettings {
		vals, _ := json.MarshalIndent(s.values.Map(), "", "  ")
		mc, _ := json.MarshalIndent(s.mesh, "", "  ")
		fmt.Printf("# templates: %v\n# defaultTemplates: %v\n# policy: %v\n# values:\n%s\n# mesh:\n%s\n",
			keys(s.config.Templates), s.config.DefaultTemplates, s.config.Policy, vals, mc)
		return
	}

	stop := make(chan struct{})
	defer close(stop)
	if *serveAddr != "" {
		if *tlsCert == "" || *tlsKey == "" {
			fail(2, "oracle: --serve needs --tls-cert and --tls-key")
		}
		if err := serve(*serveAddr, *tlsCert, *tlsKey, s, stop); err != nil {
			fail(2, "oracle: %v", err)
		}
		return
	}
	inj := newInjector(stop)

	var in io.Reader = os.Stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			fail(2, "oracle: %v", err)
		}
		defer f.Close()
		in = f
	}
	if *jsonl {
		if err := runBatch(inj, s, in, os.Stdout); err != nil {
			fail(2, "oracle: %v", err)
		}
		return
	}
	manifest, err := io.ReadAll(in)
	if err != nil {
		fail(2, "oracle: %v", err)
	}
	r := injectOne(inj, s, manifest)
	for _, w := range r.warnings {
		fmt.Fprintln(os.Stderr, w)
	}
	if r.refusal != "" {
		if *refusal {
			fmt.Printf("refused: %s\n", r.refusal)
			return
		}
		fail(1, "%s", r.refusal)
	}
	_, _ = os.Stdout.Write(r.output)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}

// staticWatcher hands the webhook the oracle's settings once; they never change.
type staticWatcher struct {
	config *inject.Config
	values string
}

func (w staticWatcher) SetHandler(func(*inject.Config, string) error) {}
func (w staticWatcher) Run(<-chan struct{})                           {}
func (w staticWatcher) Get() (*inject.Config, string, error)          { return w.config, w.values, nil }

// serve runs Istio's injection webhook as istiod does (inject.NewWebhook registers
// Webhook.serveInject on /inject and /inject/ of the mux), with the oracle's settings: the
// same templates, values and mesh config, no ProxyConfig resources, and TestInjection's fake
// cluster (its two nodes, so native sidecars are detected as they are for the golden files).
// /readyz answers 200 once the webhook is built. TLS 1.2 or later, HTTP/1.1 and HTTP/2 as Go
// serves them. It returns when SIGTERM or SIGINT arrives.
func serve(addr, certFile, keyFile string, s *settings, stop chan struct{}) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("serving certificate: %v", err)
	}
	// As TestInjection: the webhook's node informers are built on the multicluster controller
	// before the cluster is added and its client started.
	client := fakeCluster()
	multi := multicluster.NewFakeController()
	env := &model.Environment{Watcher: meshwatcher.NewTestWatcher(s.mesh)}
	env.SetPushContext(&model.PushContext{ProxyConfigs: &model.ProxyConfigs{}})
	mux := http.NewServeMux()
	wh, err := inject.NewWebhook(inject.WebhookParameters{
		Watcher:      staticWatcher{config: s.config, values: s.valuesRaw},
		Env:          env,
		Mux:          mux,
		MultiCluster: multi,
	})
	if err != nil {
		return fmt.Errorf("Istio's webhook: %v", err)
	}
	multi.Add(constants.DefaultClusterName, client, stop)
	client.RunAndWait(stop)
	wh.Run(stop)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
