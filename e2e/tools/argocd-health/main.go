// Command argocd-health prints the health Argo CD's application controller assigns to
// Kubernetes objects, computed by Argo CD's own code: gitops-engine's health.GetResourceHealth
// with the Lua health overrides of Argo CD v3.2.12 (package util/lua, gopher-lua with Argo CD's
// default of no open libraries).
//
// The scripts come from where Argo CD reads them, an argocd-cm ConfigMap, through Argo CD's own
// SettingsManager against a live API server (--kubeconfig, --namespace): so the snippet users
// paste (examples/argocd/argocd-cm.yaml) is what is judged, key names and labels included. For
// tests without a cluster, --health GROUP/KIND=FILE.lua runs a script file directly.
//
// Input on stdin: one JSON object, or a List (`kubectl get ... -o json`). Output: one JSON line
// per object with its identity, status and message.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/argoproj/gitops-engine/pkg/health"
	log "github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"github.com/argoproj/argo-cd/v3/util/settings"
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

type healthFlags map[string]appv1.ResourceOverride

func (h healthFlags) String() string { return fmt.Sprint(len(h), " scripts") }

func (h healthFlags) Set(value string) error {
	groupKind, path, ok := strings.Cut(value, "=")
	if !ok || !strings.Contains(groupKind, "/") {
		return fmt.Errorf("want GROUP/KIND=FILE.lua, got %q", value)
	}
	script, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	h[groupKind] = appv1.ResourceOverride{HealthLua: string(script)}
	return nil
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "read the scripts from the argocd-cm ConfigMap of this cluster")
	namespace := flag.String("namespace", "argocd", "namespace of argocd-cm (with --kubeconfig)")
	scripts := healthFlags{}
	flag.Var(scripts, "health", "GROUP/KIND=FILE.lua: run this script for that kind (repeatable; instead of --kubeconfig)")
	flag.Parse()
	log.SetOutput(os.Stderr)
	log.SetLevel(log.WarnLevel)

	overrides := map[string]appv1.ResourceOverride(scripts)
	if *kubeconfig != "" {
		var err error
		if overrides, err = fromConfigMap(*kubeconfig, *namespace); err != nil {
			fail("reading argocd-cm in namespace %s: %v", *namespace, err)
		}
	} else if len(overrides) == 0 {
		fail("give --kubeconfig (scripts from argocd-cm) or at least one --health GROUP/KIND=FILE.lua")
	}

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
		// The application controller's call (controller/health.go), with its override type.
		result, err := health.GetResourceHealth(obj, lua.ResourceHealthOverrides(overrides))
		switch {
		case err != nil:
			v.Error = err.Error()
		case result == nil:
			v.Error = "Argo CD has no health check for this kind"
		default:
			v.Status, v.Message = string(result.Status), result.Message
		}
		if err := out.Encode(v); err != nil {
			fail("writing stdout: %v", err)
		}
	}
}

// fromConfigMap loads the resource overrides as Argo CD's API server and controller do: its
// SettingsManager watching argocd-cm (labelled app.kubernetes.io/part-of: argocd) in namespace.
func fromConfigMap(kubeconfig, namespace string) (map[string]appv1.ResourceOverride, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return settings.NewSettingsManager(ctx, clientset, namespace).GetResourceOverrides()
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
	fmt.Fprintf(os.Stderr, "argocd-health: "+format+"\n", args...)
	os.Exit(2)
}
