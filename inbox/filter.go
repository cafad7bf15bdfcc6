package inbox

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/handoverd/handoverd/apperr"
)

// FilterRule is one rule of a Chatwoot filter payload (POST
// …/conversations/filter, …/contacts/filter): attribute_key
// filter_operator values, joined to the next rule by query_operator (and,
// or).
type FilterRule struct {
	AttributeKey   string            `json:"attribute_key"`
	FilterOperator string            `json:"filter_operator"`
	Values         []json.RawMessage `json:"values"`
	QueryOperator  *string           `json:"query_operator"`
}

// filterAttr is an attribute rules may name: the SQL expression it
// compares, and whether its values are ids.
type filterAttr struct {
	expr    string
	numeric bool
	// set is a subquery of conversation ids per value (labels).
	set string
}

var conversationAttrs = map[string]filterAttr{
	"status":      {expr: "status"},
	"assignee_id": {expr: "assignee_id", numeric: true},
	"inbox_id":    {expr: "inbox_id", numeric: true},
	"team_id":     {expr: "team_id", numeric: true},
	"display_id":  {expr: "id", numeric: true},
	"contact_id":  {expr: "contact_id", numeric: true},
	"labels":      {set: "SELECT conversation_id FROM conversation_labels WHERE label = ?"},
}

var contactAttrs = map[string]filterAttr{
	"name":         {expr: "name"},
	"email":        {expr: "email"},
	"phone_number": {expr: "phone_number"},
	"identifier":   {expr: "identifier"},
	"id":           {expr: "id", numeric: true},
}

// filterValue reads one value: a string, a number, or an object with an
// id (how Chatwoot's dashboard sends agents and inboxes).
func filterValue(raw json.RawMessage, numeric bool) (any, bool) {
	var obj struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &obj) == nil && len(obj.ID) > 0 {
		raw = obj.ID
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return nil, false
		}
		s = n.String()
	}
	if !numeric {
		return s, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// likePattern is a LIKE pattern matching s anywhere (ESCAPE '\').
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + strings.ToLower(r.Replace(s)) + "%"
}

// buildFilter turns rules into one SQL condition with ? placeholders (in
// order) and their arguments. idExpr is the row's id, for set attributes.
func buildFilter(rules []FilterRule, attrs map[string]filterAttr, idExpr string) (string, []any, error) {
	if len(rules) == 0 {
		return "", nil, apperr.Field("payload", "needs at least one filter rule")
	}
	if len(rules) > 20 {
		return "", nil, apperr.Field("payload", "at most 20 filter rules")
	}
	var sb strings.Builder
	var args []any
	sb.WriteString("(")
	for i, r := range rules {
		k := fmt.Sprintf("payload[%d]", i)
		a, ok := attrs[r.AttributeKey]
		if !ok {
			names := make([]string, 0, len(attrs))
			for n := range attrs {
				names = append(names, n)
			}
			return "", nil, apperr.Field(k+".attribute_key", "unknown attribute %q (one of %s)", r.AttributeKey, strings.Join(sorted(names), ", "))
		}
		var vals []any
		for j, raw := range r.Values {
			v, ok := filterValue(raw, a.numeric)
			if !ok {
				return "", nil, apperr.Field(fmt.Sprintf("%s.values[%d]", k, j), "is not a valid %s", r.AttributeKey)
			}
			vals = append(vals, v)
		}
		if i > 0 {
			op := "AND"
			if prev := rules[i-1].QueryOperator; prev != nil && strings.EqualFold(*prev, "or") {
				op = "OR"
			} else if prev != nil && *prev != "" && !strings.EqualFold(*prev, "and") {
				return "", nil, apperr.Field(fmt.Sprintf("payload[%d].query_operator", i-1), "must be and or or")
			}
			sb.WriteString(" " + op + " ")
		}
		cond, cargs, err := ruleCondition(r.FilterOperator, a, vals, idExpr, k)
		if err != nil {
			return "", nil, err
		}
		sb.WriteString(cond)
		args = append(args, cargs...)
	}
	sb.WriteString(")")
	return sb.String(), args, nil
}

func ruleCondition(op string, a filterAttr, vals []any, idExpr, k string) (string, []any, error) {
	needValues := func() error {
		if len(vals) == 0 {
			return apperr.Field(k+".values", "needs at least one value for %s", op)
		}
		return nil
	}
	if a.set != "" { // labels: has any / none of the values, or any at all
		switch op {
		case "equal_to", "contains", "not_equal_to", "does_not_contain":
			if err := needValues(); err != nil {
				return "", nil, err
			}
			parts := make([]string, len(vals))
			for i := range vals {
				parts[i] = idExpr + " IN (" + a.set + ")"
			}
			cond := "(" + strings.Join(parts, " OR ") + ")"
			if op == "not_equal_to" || op == "does_not_contain" {
				cond = "NOT " + cond
			}
			return cond, vals, nil
		case "is_present", "is_not_present":
			cond := idExpr + " IN (" + strings.Replace(a.set, " WHERE label = ?", "", 1) + ")"
			if op == "is_not_present" {
				cond = "NOT " + cond
			}
			return cond, nil, nil
		}
		return "", nil, apperr.Field(k+".filter_operator", "labels take equal_to, not_equal_to, contains, does_not_contain, is_present or is_not_present")
	}
	col := a.expr
	switch op {
	case "equal_to", "not_equal_to":
		if err := needValues(); err != nil {
			return "", nil, err
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
		args := vals
		if !a.numeric { // case-insensitive, as Chatwoot compares
			col = "lower(" + col + ")"
			args = make([]any, len(vals))
			for i, v := range vals {
				args[i] = strings.ToLower(v.(string))
			}
		}
		if op == "equal_to" {
			return col + " IN (" + marks + ")", args, nil
		}
		return "(" + a.expr + " IS NULL OR " + col + " NOT IN (" + marks + "))", args, nil
	case "contains", "does_not_contain":
		if a.numeric {
			return "", nil, apperr.Field(k+".filter_operator", "%s takes equal_to, not_equal_to, is_present or is_not_present", op)
		}
		if err := needValues(); err != nil {
			return "", nil, err
		}
		parts := make([]string, len(vals))
		args := make([]any, len(vals))
		for i, v := range vals {
			parts[i], args[i] = "lower("+col+") LIKE ? ESCAPE '\\'", likePattern(v.(string))
		}
		cond := "(" + strings.Join(parts, " OR ") + ")"
		if op == "does_not_contain" {
			cond = "NOT " + cond
		}
		return cond, args, nil
	case "is_present":
		if a.numeric {
			return col + " IS NOT NULL", nil, nil
		}
		return col + " <> ''", nil, nil
	case "is_not_present":
		if a.numeric {
			return col + " IS NULL", nil, nil
		}
		return col + " = ''", nil, nil
	}
	return "", nil, apperr.Field(k+".filter_operator", "unknown operator %q (equal_to, not_equal_to, contains, does_not_contain, is_present, is_not_present)", op)
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

// sqlWhere collects the conditions of a query and numbers its
// placeholders.
type sqlWhere struct {
	conds []string
	args  []any
}

// add appends cond, replacing each ? with the next $n for the next of args.
func (w *sqlWhere) add(cond string, args ...any) {
	var sb strings.Builder
	i := 0
	for _, r := range cond {
		if r == '?' && i < len(args) {
			w.args = append(w.args, args[i])
			i++
			sb.WriteString("$" + strconv.Itoa(len(w.args)))
			continue
		}
		sb.WriteRune(r)
	}
	w.conds = append(w.conds, sb.String())
}

func (w *sqlWhere) String() string { return strings.Join(w.conds, " AND ") }
