package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// loadCRD reads the first CustomResourceDefinition of a YAML file, with the v1 defaults the API
// server applies when it decodes one.
func loadCRD(path string) (*apiextensionsv1.CustomResourceDefinition, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(raw, crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(crd)
	return crd, nil
}

// walk calls visit for every node of a v1 schema with its path, written like cel_row.py's
// `rule_locations` (`.spec.volumes`, `.spec.tolerations[]`), so both tools name a location alike.
func walk(node *apiextensionsv1.JSONSchemaProps, path string, visit func(string, *apiextensionsv1.JSONSchemaProps)) {
	if node == nil {
		return
	}
	visit(path, node)
	names := make([]string, 0, len(node.Properties))
	for name := range node.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		child := node.Properties[name]
		walk(&child, path+"."+name, visit)
		node.Properties[name] = child
	}
	if node.Items != nil && node.Items.Schema != nil {
		walk(node.Items.Schema, path+"[]", visit)
	}
	if node.AdditionalProperties != nil && node.AdditionalProperties.Schema != nil {
		walk(node.AdditionalProperties.Schema, path+"[]", visit)
	}
}

// ruleLocations lists the schema paths that carry CEL rules, in schema order, with their rules.
func ruleLocations(crd *apiextensionsv1.CustomResourceDefinition) ([]string, map[string][]string) {
	var order []string
	rules := map[string][]string{}
	walk(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, "", func(path string, node *apiextensionsv1.JSONSchemaProps) {
		if len(node.XValidations) == 0 {
			return
		}
		order = append(order, path)
		for _, r := range node.XValidations {
			rules[path] = append(rules[path], r.Rule)
		}
	})
	return order, rules
}

// Arguments of keepRules besides a path.
const (
	keepAll  = "*"
	keepNone = "-"
)

// keepRules returns a copy of the CRD whose schemas keep the CEL rules at the path `keep` only,
// or all of them (keepAll), or none (keepNone); the rest of the schema, list types included, is
// unchanged.
func keepRules(crd *apiextensionsv1.CustomResourceDefinition, keep string) *apiextensionsv1.CustomResourceDefinition {
	return keepRule(crd, keep, -1)
}

// keepRule is keepRules keeping only the index-th rule at `keep` (all of its rules if index < 0).
func keepRule(crd *apiextensionsv1.CustomResourceDefinition, keep string, index int) *apiextensionsv1.CustomResourceDefinition {
	out := crd.DeepCopy()
	if keep == keepAll {
		return out
	}
	for i := range out.Spec.Versions {
		walk(out.Spec.Versions[i].Schema.OpenAPIV3Schema, "", func(path string, node *apiextensionsv1.JSONSchemaProps) {
			if path != keep {
				node.XValidations = nil
			} else if index >= 0 {
				node.XValidations = node.XValidations[index : index+1]
			}
		})
	}
	return out
}

// validateCRD runs the checks the API server runs when the CRD is created (structural schema,
// list-map keys, CEL compilation and estimated cost), so a model change that the API server
// would refuse is caught here too.
func validateCRD(crd *apiextensionsv1.CustomResourceDefinition) error {
	internal := &apiextensions.CustomResourceDefinition{}
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(crd, internal, nil); err != nil {
		return err
	}
	internal.Status.StoredVersions = []string{internal.Spec.Versions[0].Name}
	internal.Status.AcceptedNames = internal.Spec.Names
	if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		return fmt.Errorf("the API server would refuse this CRD:\n  %s", strings.Join(msgs, "\n  "))
	}
	return nil
}

// objectValidator is the registry strategy's create validation (customresource.NewStrategy
// returns an unexported type).
type objectValidator interface {
	Validate(ctx context.Context, obj runtime.Object) field.ErrorList
}

// servedCRD is what the API server builds for one CRD version (customresource_handler.go,
// getOrCreateServingInfoFor): the structural schema, and the registry strategy whose Validate
// runs at every create (OpenAPI schema, metadata, list types, then the CEL rules).
type servedCRD struct {
	kind       schema.GroupVersionKind
	namespaced bool
	structural *structuralschema.Structural
	strategy   objectValidator
	cel        *cel.Validator // nil when the CRD has no rules, as in the API server
}

// serve builds the apiserver's validation objects for the CRD's first version, the same way
// and with the same conversions as the API server.
func serve(crd *apiextensionsv1.CustomResourceDefinition) (*servedCRD, error) {
	v := crd.Spec.Versions[0]
	internalValidation := &apiextensions.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v.Schema, internalValidation, nil); err != nil {
		return nil, fmt.Errorf("converting the schema to internal: %w", err)
	}
	s, err := structuralschema.NewStructural(internalValidation.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("not a structural schema: %w", err)
	}
	s = s.DeepCopy()
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, err
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(internalValidation.OpenAPIV3Schema)
	if err != nil {
		return nil, err
	}
	var statusSpec *apiextensions.CustomResourceSubresourceStatus
	var statusValidator apiservervalidation.SchemaValidator
	var scaleSpec *apiextensions.CustomResourceSubresourceScale
	if sub := v.Subresources; sub != nil {
		if sub.Status != nil {
			statusSpec = &apiextensions.CustomResourceSubresourceStatus{}
			statusSchema := internalValidation.OpenAPIV3Schema.Properties["status"]
			if statusValidator, _, err = apiservervalidation.NewSchemaValidator(&statusSchema); err != nil {
				return nil, err
			}
		}
		if sub.Scale != nil {
			scaleSpec = &apiextensions.CustomResourceSubresourceScale{}
			if err := apiextensionsv1.Convert_v1_CustomResourceSubresourceScale_To_apiextensions_CustomResourceSubresourceScale(sub.Scale, scaleSpec, nil); err != nil {
				return nil, err
			}
		}
	}
	kind := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
	namespaced := crd.Spec.Scope == apiextensionsv1.NamespaceScoped
	strategy := customresource.NewStrategy(nil, namespaced, kind,
		validator, statusValidator, s, statusSpec, scaleSpec, v.SelectableFields)
	return &servedCRD{
		kind:       kind,
		namespaced: namespaced,
		structural: s,
		strategy:   strategy,
		cel:        cel.NewValidator(s, true, celconfig.PerCallLimit),
	}, nil
}
