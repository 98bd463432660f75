package main

import (
	"fmt"

	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// benchImage is the image cel_row.py uses without a session registry.
const benchImage = "127.0.0.1:5001/examples/hello-wasi:v1"

// The two bodies of e2e/bench/cel_row.py (row h), so the offline numbers and the apiserver's are
// about the same objects: the benchmark's minimal WasmApp, and `full_spec()`, which sets every
// field a rule looks at. Keep fullSpec in step with cel_row.full_spec.
const minimalSpec = `{"image": "` + benchImage + `", "replicas": 1}`

const fullSpec = `{
  "image": "` + benchImage + `", "replicas": 2, "runtime": "wasmtime",
  "ports": [{"name": "http", "containerPort": 8080}],
  "service": {"port": 80, "annotations": {"example.com/owner": "bench"}},
  "env": [{"name": "GREETING", "value": "hello"}, {"name": "MODE", "value": "bench"}],
  "probes": {"readiness": {"path": "/healthz"}},
  "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
  "nodeSelector": {"kubernetes.io/os": "linux"},
  "tolerations": [{"key": "example.com/dedicated", "operator": "Equal", "value": "wasm", "effect": "NoSchedule"}],
  "podLabels": {"team": "bench", "tier": "web"}, "podAnnotations": {"example.com/note": "bench"},
  "variables": [{"name": "greeting", "value": "hi"}],
  "otel": {"endpoint": "http://127.0.0.1:4318"},
  "strategy": {"type": "RollingUpdate"}, "terminationGracePeriodSeconds": 30, "drainSeconds": 5
}`

// benchObject is one named body, as the JSON a client sends.
type benchObject struct {
	name string
	json []byte
}

func benchObjects() []benchObject {
	return []benchObject{
		{"minimal", wrap("bench-minimal", minimalSpec)},
		{"full", wrap("bench-full", fullSpec)},
	}
}

// wrap puts a spec into a whole WasmApp with the metadata a create carries once the API server
// has filled it in (uid, generation, creation time).
func wrap(name, spec string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
  "metadata": {"name": %q, "namespace": "bench", "uid": "6f1c1d2e-0b7a-4c59-9d8e-2a51f7b0c3aa",
               "generation": 1, "creationTimestamp": "2025-01-01T00:00:00Z"},
  "spec": %s}`, name, spec))
}

// decode turns JSON into the unstructured form the API server validates: JSON integers become
// int64 and other numbers float64 (k8s.io/apimachinery/pkg/util/json, as the CR decoder does).
func decode(raw []byte) (map[string]interface{}, error) {
	obj := map[string]interface{}{}
	if err := utiljson.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}
