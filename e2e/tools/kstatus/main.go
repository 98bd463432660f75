// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status), the library
// behind Flux's health checks and `kubectl`-adjacent tools such as kpt, computes for Kubernetes
// objects. The e2e tests feed it live WasmApps and WasmRuntimes (`kubectl get -o json`), so the
// verdict is the library's own, not a reimplementation of its rules.
//
// Input on stdin: one JSON object, or a List (`kubectl get ... -o json`) whose items are judged
// one by one. Output: one JSON line per object with its identity, status and message.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Error      string `json:"error,omitempty"`
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	objects, err := decode(data)
	if err != nil {
		fail("%v", err)
	}
	out := json.NewEncoder(os.Stdout)
	for _, obj := range objects {
		v := verdict{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
		result, err := status.Compute(obj)
		if err != nil {
			v.Error = err.Error()
		} else {
			v.Status, v.Message = result.Status.String(), result.Message
		}
		if err := out.Encode(v); err != nil {
			fail("writing stdout: %v", err)
		}
	}
}

// decode accepts a single object or a List of them, as `kubectl get -o json` prints either.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	var obj unstructured.Unstructured
	if err := obj.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("stdin is not a Kubernetes object in JSON: %w", err)
	}
	if !obj.IsList() {
		return []*unstructured.Unstructured{&obj}, nil
	}
	list, err := obj.ToList()
	if err != nil {
		return nil, fmt.Errorf("stdin is a List whose items are not objects: %w", err)
	}
	objects := make([]*unstructured.Unstructured, 0, len(list.Items))
	for i := range list.Items {
		objects = append(objects, &list.Items[i])
	}
	return objects, nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(2)
}
