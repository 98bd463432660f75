package main

import (
	"bufio"
	"fmt"
	"io"

	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// labelled is one input line: {"label": ..., "object": {...}}. Both modes read them from stdin:
// `bench` the bodies of row h (bench_bodies.py), `check` the hostile-input cases (hostile_cases.py).
type labelled struct {
	label  string
	object map[string]interface{}
}

// readLabelled reads JSON lines, decoded like the API server decodes a body (integers become
// int64, other numbers float64: k8s.io/apimachinery/pkg/util/json), not with encoding/json.
func readLabelled(r io.Reader) ([]labelled, error) {
	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var out []labelled
	for in.Scan() {
		if len(in.Bytes()) == 0 {
			continue
		}
		line, err := decode(in.Bytes())
		if err != nil {
			return nil, fmt.Errorf("bad input line: %w", err)
		}
		label, _ := line["label"].(string)
		obj, ok := line["object"].(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("%s: no object", label)
		}
		out = append(out, labelled{label, obj})
	}
	return out, in.Err()
}

// decode turns JSON into the unstructured form the API server validates.
func decode(raw []byte) (map[string]interface{}, error) {
	obj := map[string]interface{}{}
	if err := utiljson.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}
