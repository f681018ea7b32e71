package manifest

import (
	"fmt"
	"strconv"

	yamlv2 "sigs.k8s.io/yaml/goyaml.v2"
)

// decodeYAML parses one document with the YAML 1.1 parser kubectl uses (sigs.k8s.io/yaml's goyaml.v2) and
// converts it to the JSON-shaped values the API server would receive (string keys, int64, float64), without
// sigs.k8s.io/yaml's round trip through encoded JSON.
func decodeYAML(data []byte) (any, error) {
	var v any
	if err := yamlv2.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return jsonShaped(v)
}

func jsonShaped(v any) (any, error) {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			key, err := keyString(k)
			if err != nil {
				return nil, err
			}
			if m[key], err = jsonShaped(e); err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
		}
		return m, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = jsonShaped(e); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return out, nil
	case int:
		return int64(x), nil
	case uint64:
		return float64(x), nil
	case string, bool, float64, int64, nil:
		return x, nil
	}
	return nil, fmt.Errorf("unsupported YAML value of type %T", v)
}

// keyString renders a map key as sigs.k8s.io/yaml does when it converts YAML to JSON.
func keyString(k any) (string, error) {
	switch x := k.(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 32)
		switch s {
		case "+Inf":
			s = ".inf"
		case "-Inf":
			s = "-.inf"
		case "NaN":
			s = ".nan"
		}
		return s, nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("unsupported map key of type %T: %v", k, k)
}
