// Command celcost measures, offline, what the WasmApp CRD's CEL rules (x-kubernetes-validations)
// cost at admission (issue #14), with the API server's own code: the CRD is converted and served
// exactly as kube-apiserver does (internal conversion, structural schema, OpenAPI schema
// validator, registry strategy), then the strategy's create validation and the CEL validator run
// in a testing.B loop on the bodies of e2e/bench/cel_row.py (bench_bodies.py prints them). No
// apiserver, etcd or network.
//
//	bench_bodies.py | celcost bench -crd crds/wasmkube.dev_wasmapps.yaml [-benchtime 1s] [-count 3] [-each-rule] [-json out.json]
//	celcost check -crd crds/wasmkube.dev_wasmapps.yaml < cases.jsonl
//
// bench prints ns/op and allocs/op per body for: validation without any rule (the same CRD with
// every x-kubernetes-validations removed), validation with all rules, the CEL validator alone,
// and the CEL validator with one rule location kept (all others stripped), costliest first.
//
// check reads JSON lines {"label": ..., "object": {...}} and prints, per line, whether the API
// server's create validation refuses the object and its error text, as `kubectl create` would
// show it: the way to prove that a change to the rules keeps every refusal.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func main() {
	testing.Init() // testing.Benchmark reads -test.benchtime
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	flags := flag.NewFlagSet(mode, flag.ExitOnError)
	crdPath := flags.String("crd", "crds/wasmkube.dev_wasmapps.yaml", "the CRD file")
	benchtime := flags.String("benchtime", "1s", "time (or Nx iterations) per measurement")
	count := flags.Int("count", 3, "measurements per case; the median is reported")
	eachRule := flags.Bool("each-rule", false, "also measure each rule alone where a location has several")
	memProfile := flags.String("memprofile", "", "write an allocation profile of the bench run here (go tool pprof)")
	jsonOut := flags.String("json", "", "also write the results here as JSON")
	_ = flags.Parse(os.Args[2:])

	crd, err := loadCRD(*crdPath)
	if err == nil {
		err = validateCRD(crd)
	}
	if err != nil {
		fail(err)
	}
	switch mode {
	case "bench":
		if err := flag.Set("test.benchtime", *benchtime); err != nil {
			fail(err)
		}
		if *memProfile != "" {
			runtime.MemProfileRate = 4096
		}
		bodies, err := readLabelled(os.Stdin)
		if err == nil && len(bodies) == 0 {
			err = fmt.Errorf("no bodies on stdin: pipe in e2e/tools/celcost/bench_bodies.py")
		}
		if err != nil {
			fail(err)
		}
		results, err := bench(crd, bodies, *count, *eachRule)
		if err != nil {
			fail(err)
		}
		if *memProfile != "" {
			f, err := os.Create(*memProfile)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
			}
			if err != nil {
				fail(err)
			}
		}
		printTable(os.Stdout, results)
		if *jsonOut != "" {
			raw, _ := json.MarshalIndent(results, "", "  ")
			if err := os.WriteFile(*jsonOut, append(raw, '\n'), 0o644); err != nil {
				fail(err)
			}
		}
	case "check":
		if err := check(crd); err != nil {
			fail(err)
		}
	default:
		usage()
	}
}

type checkResult struct {
	Label   string   `json:"label"`
	Refused bool     `json:"refused"`
	Error   string   `json:"error,omitempty"`  // what kubectl shows (its order varies: Go maps)
	Causes  []string `json:"causes,omitempty"` // each field error, sorted, to compare two CRDs
}

func check(crd *apiextensionsv1.CustomResourceDefinition) error {
	served, err := serve(crd)
	if err != nil {
		return err
	}
	cases, err := readLabelled(os.Stdin)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	for _, c := range cases {
		refusal := served.admit(context.Background(), c.object)
		res := checkResult{Label: c.label, Refused: refusal != nil}
		if refusal != nil {
			res.Error = refusal.Error()
			for _, cause := range refusal.ErrStatus.Details.Causes {
				res.Causes = append(res.Causes, cause.Field+": "+cause.Message)
			}
			sort.Strings(res.Causes)
		}
		if err := out.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: celcost bench|check -crd FILE [-benchtime 1s] [-count 3] [-each-rule] [-json FILE]")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "celcost:", err)
	os.Exit(1)
}
