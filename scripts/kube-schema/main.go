// Prints, as JSON, the Go types that encoding/json meets when it decodes a corev1.Volume or a
// corev1.VolumeMount (k8s.io/api at the version go.mod names, the one Istio 86c9f01 builds
// with), read by reflection: each struct's fields in the order Go writes them, embedded
// structs flattened, with their JSON names and tag options; each other named type by its
// underlying type. scripts/gen-kube-schema.mjs runs it and writes src/injection/kube-schema.ts.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Types with their own UnmarshalJSON and MarshalJSON: the decoder knows each by name.
var special = map[string]bool{
	"resource.Quantity": true,
	"v1.Time":           true,
	"v1.FieldsV1":       true,
}

type field struct {
	// The Go names of the embedded structs the field comes through, then its JSON name.
	Path []string `json:"path"`
	Type string   `json:"type"`
	// The tag's options that encoding/json reads: omitempty, omitzero.
	Options []string `json:"options,omitempty"`
}

type schema struct {
	Roots   []string           `json:"roots"`
	Structs map[string][]field `json:"structs"`
	Named   map[string]string  `json:"named"`
	Special []string           `json:"special"`
}

var (
	out     = schema{Structs: map[string][]field{}, Named: map[string]string{}}
	pkgOf   = map[string]string{}
	pending []reflect.Type
)

var unmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kube-schema: "+format+"\n", args...)
	os.Exit(1)
}

// name is t as Go's errors write it (reflect's String), noting the named types to describe.
func name(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + name(t.Elem())
	case reflect.Slice:
		if t.Name() == "" {
			return "[]" + name(t.Elem())
		}
	case reflect.Map:
		if t.Name() == "" {
			return "map[" + name(t.Key()) + "]" + name(t.Elem())
		}
	}
	s := t.String()
	if t.Name() == "" {
		fail("unnamed type %s", s)
	}
	if t.PkgPath() == "" {
		switch t.Kind() {
		case reflect.String, reflect.Bool, reflect.Int32, reflect.Int64:
			return s
		}
		fail("unsupported basic type %s", s)
	}
	if p, seen := pkgOf[s]; seen {
		if p != t.PkgPath() {
			fail("two types named %s: %s and %s", s, p, t.PkgPath())
		}
		return s
	}
	pkgOf[s] = t.PkgPath()
	pending = append(pending, t)
	return s
}

// underlying is a named non-struct type's underlying type, written as Go writes a type.
func underlying(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int32, reflect.Int64:
		return t.Kind().String()
	case reflect.Slice:
		return "[]" + name(t.Elem())
	case reflect.Map:
		return "map[" + name(t.Key()) + "]" + name(t.Elem())
	}
	fail("unsupported named type %s of kind %s", t, t.Kind())
	return ""
}

// fields flattens t's fields as encoding/json's typeFields does for the types met here:
// exported fields, a tag's name or else the Go name, an embedded struct without a tag name
// flattened in its place. A name met twice fails (Go's dominance rule is not needed here).
func fields(t reflect.Type, via []string, into *[]field, seen map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		jsonName := parts[0]
		if f.Anonymous && jsonName == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				fail("%s embeds a pointer %s", t, ft)
			}
			if ft.Kind() == reflect.Struct {
				fields(ft, append(append([]string{}, via...), f.Name), into, seen)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if jsonName == "" {
			jsonName = f.Name
		}
		var options []string
		for _, o := range parts[1:] {
			switch o {
			case "omitempty", "omitzero":
				options = append(options, o)
			case "inline":
				// Read by Kubernetes' own serializers, not by encoding/json.
			default:
				fail("%s.%s: tag option %q", t, f.Name, o)
			}
		}
		if seen[jsonName] {
			fail("%s: two fields named %s", t, jsonName)
		}
		seen[jsonName] = true
		*into = append(*into, field{Path: append(append([]string{}, via...), jsonName), Type: name(f.Type), Options: options})
	}
}

func main() {
	for _, root := range []any{corev1.Volume{}, corev1.VolumeMount{}} {
		out.Roots = append(out.Roots, name(reflect.TypeOf(root)))
	}
	for len(pending) > 0 {
		t := pending[0]
		pending = pending[1:]
		s := t.String()
		if reflect.PointerTo(t).Implements(unmarshaler) || t.Implements(unmarshaler) {
			if !special[s] {
				fail("%s has its own UnmarshalJSON: teach the decoder, then list it here", s)
			}
			out.Special = append(out.Special, s)
			continue
		}
		if t.Kind() != reflect.Struct {
			out.Named[s] = underlying(t)
			continue
		}
		list := []field{}
		fields(t, nil, &list, map[string]bool{})
		out.Structs[s] = list
	}
	sort.Strings(out.Special)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fail("%v", err)
	}
}
