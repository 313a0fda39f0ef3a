package v1alpha1

import (
	"encoding/json"
	"reflect"
)

// block returns the settings block of a safeguard (the field tagged
// `safeguard:"<name>"`), or an invalid value when SafeguardSettings has none.
func (s *SafeguardSettings) block(name SafeguardName) reflect.Value {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("safeguard") == string(name) {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// Mode returns the mode set for one safeguard, or "" when its block or mode is
// unset, or the safeguard has no block.
func (s *SafeguardSettings) Mode(name SafeguardName) Mode {
	b := s.block(name)
	if !b.IsValid() || b.IsNil() {
		return ""
	}
	return b.Elem().FieldByName("Mode").Interface().(Mode)
}

// SetMode sets the mode of one safeguard, creating its block if needed. It
// does nothing for a safeguard without a block.
func (s *SafeguardSettings) SetMode(name SafeguardName, mode Mode) {
	b := s.block(name)
	if !b.IsValid() {
		return
	}
	if b.IsNil() {
		b.Set(reflect.New(b.Type().Elem()))
	}
	b.Elem().FieldByName("Mode").Set(reflect.ValueOf(mode))
}

// Decision returns the decision documented for a safeguard, or nil.
func (s *PHIWorkloadSpec) Decision(name SafeguardName) *Decision {
	for i := range s.Decisions {
		if s.Decisions[i].Safeguard == name {
			return &s.Decisions[i]
		}
	}
	return nil
}

// Strength orders modes: Off < Audit < Enforce. An unset mode is weakest.
func (m Mode) Strength() int {
	switch m {
	case ModeEnforce:
		return 2
	case ModeAudit:
		return 1
	}
	return 0
}

// DecisionsRecordedBy reads DecisionsRecordedByAnnotation: who added or last
// changed each decision. An absent or unreadable annotation reads as empty.
func (w *PHIWorkload) DecisionsRecordedBy() map[SafeguardName]string {
	out := map[SafeguardName]string{}
	if raw := w.Annotations[DecisionsRecordedByAnnotation]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &out) // unreadable reads as empty, as documented
	}
	return out
}
