package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// admit runs what a create runs before storage: pruning and defaulting (done by the API
// server's decoder), the strategy's PrepareForCreate-independent validation, and returns the
// error `kubectl create` shows, or nil if the object would be stored.
func (s *servedCRD) admit(ctx context.Context, obj map[string]interface{}) *apierrors.StatusError {
	if meta, ok := obj["metadata"].(map[string]interface{}); ok && s.namespaced {
		if _, set := meta["namespace"]; !set {
			meta["namespace"] = "default" // kubectl create -n sets it
		}
	}
	structuralpruning.Prune(obj, s.structural, true)
	structuraldefaulting.Default(obj, s.structural)
	u := &unstructured.Unstructured{Object: obj}
	delete(obj, "status") // PrepareForCreate: the status subresource owns status
	if errs := s.strategy.Validate(ctx, u); len(errs) > 0 {
		return apierrors.NewInvalid(s.kind.GroupKind(), u.GetName(), errs)
	}
	return nil
}

// measurement is one case: the median of `count` testing.Benchmark runs.
type measurement struct {
	Object      string  `json:"object"`
	Case        string  `json:"case"`
	Rules       int     `json:"rules,omitempty"`
	NsPerOp     int64   `json:"nsPerOp"`
	AllocsPerOp int64   `json:"allocsPerOp"`
	BytesPerOp  int64   `json:"bytesPerOp"`
	CELCost     int64   `json:"celCost,omitempty"` // CEL runtime cost units, of the 10M budget per request
	Ratio       float64 `json:"ratio,omitempty"`   // for "schema+CEL": over "schema only"
}

func measure(count int, op func()) (ns, allocs, bytes int64) {
	var all []testing.BenchmarkResult
	for i := 0; i < count; i++ {
		all = append(all, testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				op()
			}
		}))
	}
	sort.Slice(all, func(i, j int) bool { return all[i].NsPerOp() < all[j].NsPerOp() })
	mid := all[len(all)/2]
	return mid.NsPerOp(), mid.AllocsPerOp(), mid.AllocedBytesPerOp()
}

// bench measures, for each body: create validation without rules and with all rules, the CEL
// validator alone, and the CEL validator with only one rule location's rules.
func bench(crd *apiextensionsv1.CustomResourceDefinition, bodies []labelled, count int, eachRule bool) ([]measurement, error) {
	ctx := context.Background()
	all, err := serve(keepRules(crd, keepAll))
	if err != nil {
		return nil, err
	}
	none, err := serve(keepRules(crd, keepNone))
	if err != nil {
		return nil, err
	}
	order, rules := ruleLocations(crd)
	// Each location alone, and with eachRule each rule of a location with several alone too.
	type single struct {
		name  string
		rules int
		crd   *servedCRD
	}
	var singles []single
	for _, path := range order {
		one, err := serve(keepRules(crd, path))
		if err != nil {
			return nil, err
		}
		singles = append(singles, single{"CEL only at " + path, len(rules[path]), one})
		for i := 0; eachRule && len(rules[path]) > 1 && i < len(rules[path]); i++ {
			if one, err = serve(keepRule(crd, path, i)); err != nil {
				return nil, err
			}
			singles = append(singles, single{fmt.Sprintf("  one rule at %s: %s", path, rules[path][i]), 1, one})
		}
	}
	total := 0
	for _, r := range rules {
		total += len(r)
	}

	var out []measurement
	for _, body := range bodies {
		obj := body.object
		if refusal := all.admit(ctx, obj); refusal != nil {
			return nil, fmt.Errorf("the %s body must be valid: %w", body.label, refusal)
		}
		u := &unstructured.Unstructured{Object: obj}
		celOnly := func(s *servedCRD) (func(), int64) {
			run := func() {
				if errs, _ := s.cel.Validate(ctx, nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget); len(errs) > 0 {
					panic(errs.ToAggregate())
				}
			}
			_, left := s.cel.Validate(ctx, nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
			return run, celconfig.RuntimeCELCostBudget - left
		}
		add := func(c string, n int, cost int64, op func()) *measurement {
			ns, allocs, bytes := measure(count, op)
			out = append(out, measurement{Object: body.label, Case: c, Rules: n, NsPerOp: ns, AllocsPerOp: allocs,
				BytesPerOp: bytes, CELCost: cost})
			return &out[len(out)-1]
		}
		schemaOnly := add("validate: schema only (no rules)", 0, 0, func() { none.strategy.Validate(ctx, u) })
		run, cost := celOnly(all)
		both := add("validate: schema + CEL", total, cost, func() { all.strategy.Validate(ctx, u) })
		both.Ratio = float64(both.NsPerOp) / float64(schemaOnly.NsPerOp)
		add("CEL validator: all rules", total, cost, run)
		var per []measurement
		for _, one := range singles {
			run, cost := celOnly(one.crd)
			ns, allocs, bytes := measure(count, run)
			per = append(per, measurement{Object: body.label, Case: one.name, Rules: one.rules,
				NsPerOp: ns, AllocsPerOp: allocs, BytesPerOp: bytes, CELCost: cost})
		}
		if !eachRule { // costliest location first; with eachRule, each location's rules stay under it
			sort.SliceStable(per, func(i, j int) bool { return per[i].NsPerOp > per[j].NsPerOp })
		}
		out = append(out, per...)
	}
	return out, nil
}

func printTable(w io.Writer, results []measurement) {
	fmt.Fprintf(w, "%-8s %-70s %5s %10s %9s %9s %8s\n", "object", "case", "rules", "ns/op", "allocs/op", "B/op", "CELcost")
	for _, m := range results {
		extra := ""
		if m.Ratio != 0 {
			extra = fmt.Sprintf("  = %.2fx schema only", m.Ratio)
		}
		fmt.Fprintf(w, "%-8s %-70s %5d %10d %9d %9d %8d%s\n", m.Object, truncate(m.Case, 70), m.Rules, m.NsPerOp,
			m.AllocsPerOp, m.BytesPerOp, m.CELCost, extra)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
