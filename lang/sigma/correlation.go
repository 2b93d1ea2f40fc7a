package sigma

import (
	"strconv"
	"strings"

	"github.com/ruledex/ruledex/rule"
	"go.yaml.in/yaml/v3"
)

var correlationTypes = map[string]bool{
	"event_count": true, "value_count": true, "temporal": true, "temporal_ordered": true,
	"value_sum": true, "value_avg": true, "value_percentile": true, "value_median": true,
	"value_min": true, "value_max": true,
}

var thresholdOps = map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "neq": "!="}

// correlation parses a Sigma correlation document (specification v2): the rules it
// correlates, group-by, timespan, condition and aliases.
func (d *docCtx) correlation(key, v *yaml.Node) {
	r := d.r
	if v.Kind != yaml.MappingNode {
		d.errf(key, "sigma/correlation/type", "correlation must be a mapping")
		return
	}
	c := &rule.Correlation{}
	r.Correlation = c
	var condNode *yaml.Node
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], resolve(v.Content[i+1])
		if val == nil {
			continue
		}
		switch k.Value {
		case "type":
			c.Type = val.Value
			if !correlationTypes[c.Type] {
				d.errf(val, "sigma/correlation/unknown-type", "unknown correlation type %q", c.Type)
			}
		case "rules":
			c.Rules = d.strings(k, val)
		case "group-by":
			c.GroupBy = d.strings(k, val)
		case "timespan", "timeframe":
			if k.Value == "timeframe" {
				d.warnf(k, "sigma/correlation/timeframe", "correlations name their window timespan, not timeframe")
			}
			c.Timespan = val.Value
		case "generate":
			c.Generate = val.Value == "true"
		case "condition":
			condNode = val
		case "aliases":
			c.Aliases = d.aliases(k, val)
		default:
			d.warnf(k, "sigma/correlation/unknown-key", "unknown correlation key %q kept as extra metadata", k.Value)
			d.extra("correlation."+k.Value, nodeText(val))
		}
	}
	if c.Type == "" {
		d.errf(key, "sigma/correlation/missing-type", "correlation has no type")
	}
	if len(c.Rules) == 0 {
		d.errf(key, "sigma/correlation/missing-rules", "correlation names no rules")
	}
	temporal := strings.HasPrefix(c.Type, "temporal")
	if c.Timespan == "" {
		d.errf(key, "sigma/correlation/missing-timespan", "correlation has no timespan")
	}
	condText := ""
	if condNode != nil {
		if condNode.Kind == yaml.ScalarNode && temporal {
			// Temporal correlations may state which rules must occur as an expression
			// over rule names (specification test temporal_condition.yml).
			condText = condNode.Value
		} else if condNode.Kind != yaml.MappingNode {
			d.errf(condNode, "sigma/correlation/condition", "correlation condition must be a mapping such as {gte: 10}")
		} else {
			for i := 0; i+1 < len(condNode.Content); i += 2 {
				k, val := condNode.Content[i], resolve(condNode.Content[i+1])
				if val == nil {
					continue
				}
				if k.Value == "field" {
					// A list of fields (allowed by the schema) is kept comma-separated.
					c.Field = strings.Join(d.strings(k, val), ",")
					continue
				}
				if _, ok := thresholdOps[k.Value]; !ok {
					d.errf(k, "sigma/correlation/condition", "unknown comparison %q (gt, gte, lt, lte, eq, neq)", k.Value)
					continue
				}
				f, err := strconv.ParseFloat(val.Value, 64)
				if err != nil {
					d.errf(val, "sigma/correlation/condition", "%s needs a number, not %q", k.Value, val.Value)
					continue
				}
				c.Conditions = append(c.Conditions, rule.Threshold{Op: k.Value, Value: f})
			}
		}
	} else if !temporal {
		d.errf(key, "sigma/correlation/missing-condition", "%s correlation has no condition", c.Type)
	}
	if strings.HasPrefix(c.Type, "value_") && c.Field == "" {
		d.errf(key, "sigma/correlation/missing-field", "%s correlation needs condition.field", c.Type)
	}
	if d.generate != nil {
		c.Generate = d.generate.Value == "true"
	}
	r.Timeframe = c.Timespan
	r.GroupBy = c.GroupBy

	// Condition as written: the condition mapping, one comparison per line.
	if condText != "" {
		r.Condition = condText
	} else if condNode != nil && condNode.Kind == yaml.MappingNode {
		var lines []string
		for i := 0; i+1 < len(condNode.Content); i += 2 {
			v := resolve(condNode.Content[i+1])
			lines = append(lines, condNode.Content[i].Value+": "+plainText(v))
		}
		r.Condition = strings.Join(lines, "\n")
	}
	r.Stages = append(r.Stages, rule.Stage{Index: 0, Kind: rule.StageCondition, Label: "condition",
		Text: r.Condition, Pos: d.pos(condNode)})
	agg := &rule.Aggregation{Func: c.Type, Field: c.Field, GroupBy: c.GroupBy, Timespan: c.Timespan}
	if len(c.Conditions) > 0 {
		agg.Op = thresholdOps[c.Conditions[0].Op]
		agg.Value = strconv.FormatFloat(c.Conditions[0].Value, 'f', -1, 64)
	}
	r.Stages = append(r.Stages, rule.Stage{Index: 1, Kind: rule.StageCorrelation, Label: c.Type, Op: c.Type,
		Text: d.render(&selection{name: "correlation", val: v}), Aggregation: agg, Pos: d.pos(key)})
}

func (d *docCtx) aliases(k, v *yaml.Node) map[string]map[string]string {
	if v.Kind != yaml.MappingNode {
		d.errf(k, "sigma/correlation/aliases", "aliases must map alias names to {rule: field}")
		return nil
	}
	out := map[string]map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		name, m := v.Content[i].Value, resolve(v.Content[i+1])
		if m == nil || m.Kind != yaml.MappingNode {
			d.errf(v.Content[i], "sigma/correlation/aliases", "alias %q must map rule names to fields", name)
			continue
		}
		out[name] = map[string]string{}
		for j := 0; j+1 < len(m.Content); j += 2 {
			out[name][m.Content[j].Value] = m.Content[j+1].Value
		}
	}
	return out
}

// plainText writes a scalar as YAML would show it unquoted when that is safe.
func plainText(v *yaml.Node) string {
	if v == nil {
		return "null"
	}
	if v.Kind != yaml.ScalarNode {
		return nodeText(v)
	}
	if v.Tag == "!!str" && !plainSafe(v.Value) {
		return scalarText(v)
	}
	return v.Value
}
