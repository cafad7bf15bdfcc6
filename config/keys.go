package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var durationType = reflect.TypeOf(time.Duration(0))

// checkTree compares a YAML tree with the Go type it decodes into and
// returns every problem, each with the line in the file as written and the
// key path (users[0].role), never a Go type: unknown keys (typos), and
// values of the wrong shape (a list where a mapping belongs, a word where
// a number or a duration belongs).
func checkTree(n *yaml.Node, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	name := path
	if name == "" {
		name = "the top level"
	}
	at := func(format string, args ...any) string {
		return fmt.Sprintf("line %d: %s: %s", n.Line, name, fmt.Sprintf(format, args...))
	}
	if n.Kind == yaml.DocumentNode {
		var out []string
		for _, c := range n.Content {
			out = append(out, checkTree(c, t, path)...)
		}
		return out
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty value: the default
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return []string{at("want a mapping of keys (%s)", strings.Join(yamlKeys(t), ", "))}
		}
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			f, ok := fieldFor(t, k.Value)
			if !ok {
				out = append(out, fmt.Sprintf("line %d: %s: unknown key (%s takes %s)", k.Line, p, name, strings.Join(yamlKeys(t), ", ")))
				continue
			}
			out = append(out, checkTree(v, f.Type, p)...)
		}
		return out
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return []string{at("want a mapping")}
		}
		var out []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, checkTree(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))...)
		}
		return out
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return []string{at("want a list")}
		}
		var out []string
		for i, c := range n.Content {
			out = append(out, checkTree(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if n.Kind != yaml.ScalarNode {
		return []string{at("want a single value, not a list or mapping")}
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		switch {
		case t == durationType:
			return []string{at("want a duration such as 30s, 5m or 24h, got %q", n.Value)}
		case t.Kind() == reflect.Bool:
			return []string{at("want true or false, got %q", n.Value)}
		case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
			return []string{at("want a number, got %q", n.Value)}
		}
		return []string{at("cannot use %q here", n.Value)}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldFor finds the struct field a YAML key decodes into.
func fieldFor(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlKeys lists the keys a struct takes, in declaration order.
func yamlKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && yamlName(f) != "-" {
			out = append(out, yamlName(f))
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name) // yaml.v3's default
	}
	return name
}
