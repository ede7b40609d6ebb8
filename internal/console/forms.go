package console

import (
	"errors"
	"slices"
	"strings"

	"github.com/a-h/templ"

	"github.com/portvakt/portvakt/internal/manage"
)

// formErrors are the problems of a refused form: each field's shown next
// to its input, the rest in a banner at the top of the form.
type formErrors struct {
	// Fields maps a form field's name to its problem.
	Fields map[string]string
	// Banner are the problems of no field on the form.
	Banner []string
}

// formErrorsOf maps the core's refusal of a form's input: an invalid
// input's field problems go to the fields named in fields (the form's
// inputs, named as the core names them), the others and a conflict or a
// forbidden input (a prefix that is not the org's) to the banner. ok is
// false for any other error, which the handler returns as it is.
func formErrorsOf(err error, fields ...string) (fe formErrors, ok bool) {
	var me *manage.Error
	if !errors.As(err, &me) {
		return fe, false
	}
	switch me.Kind {
	case manage.Invalid:
		fe.Fields = map[string]string{}
		for _, f := range me.Fields {
			name := f.Field
			if i := strings.IndexAny(name, "[."); i > 0 && !slices.Contains(fields, name) {
				name = name[:i] // keys[0].kid is the keys field's problem
			}
			if slices.Contains(fields, name) {
				if prev := fe.Fields[name]; prev != "" {
					fe.Fields[name] = prev + "; " + f.Detail
				} else {
					fe.Fields[name] = f.Detail
				}
				continue
			}
			fe.Banner = append(fe.Banner, f.Error())
		}
		if len(me.Fields) == 0 {
			fe.Banner = append(fe.Banner, me.Detail)
		}
	case manage.Conflict, manage.Forbidden:
		fe.Banner = append(fe.Banner, me.Detail)
	default:
		return fe, false
	}
	return fe, true
}

// Any reports whether there is a problem at all.
func (fe formErrors) Any() bool { return len(fe.Fields) > 0 || len(fe.Banner) > 0 }

// Of is the problem of the field name, or "".
func (fe formErrors) Of(name string) string { return fe.Fields[name] }

// errorID is the id of the element holding the problem of field name.
func errorID(name string) string {
	return "err-" + strings.NewReplacer(".", "-", "[", "-", "]", "").Replace(name)
}

// describe are the attributes that tie an input to its problem, if any.
func (fe formErrors) describe(name string) templ.Attributes { return fe.describeWith(name, "") }

// describeWith ties an input to its hint (the element with id hintID, ""
// for none) and its problem.
func (fe formErrors) describeWith(name, hintID string) templ.Attributes {
	var ids []string
	if hintID != "" {
		ids = append(ids, hintID)
	}
	a := templ.Attributes{}
	if fe.Fields[name] != "" {
		ids = append(ids, errorID(name))
		a["aria-invalid"] = "true"
	}
	if len(ids) > 0 {
		a["aria-describedby"] = strings.Join(ids, " ")
	}
	return a
}

// hintID is the id of field name's hint, "" when it has none.
func hintID(name, hint string) string {
	if hint == "" {
		return ""
	}
	return "hint-" + strings.TrimPrefix(errorID(name), "err-")
}
