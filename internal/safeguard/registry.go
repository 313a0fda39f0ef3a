package safeguard

import (
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

// Registry is the list of safeguards, in the order they are evaluated and
// reported. It is a value: the manager builds one with New and hands it to
// the controller and the webhooks; tests build their own.
type Registry []Safeguard

// Options are what some safeguards need from the manager.
type Options struct {
	// BackupMetrics, when set, exports the time of each workload's last backup.
	BackupMetrics *BackupMetrics
	// APIReader reads, uncached, what a restore drill checks (the manager's
	// APIReader); see BackupScheduling.APIReader.
	APIReader client.Reader
	// Locations judges whether a backup location's bucket is immutable
	// (objectlock.Checker); nil leaves immutability unchecked.
	Locations LocationChecker
	// Namespace is phiguard's own namespace (the manager's --namespace).
	Namespace string
}

// New returns every safeguard phiguard has, in evaluation order: one line
// each. Status always shows all of them.
func New(opts Options) Registry {
	return Registry{
		NetworkIsolation{},
		EncryptionAtRest{},
		BackupScheduling{Metrics: opts.BackupMetrics, APIReader: opts.APIReader, Locations: opts.Locations, Namespace: opts.Namespace},
		AuditLogging{},
		TransmissionSecurity{},
		AccessControl{},
		Integrity{},
		Availability{},
	}
}

// Names returns the safeguards' names, in order.
func (r Registry) Names() []phiguardv1alpha1.SafeguardName {
	out := make([]phiguardv1alpha1.SafeguardName, 0, len(r))
	for _, sg := range r {
		out = append(out, sg.Name())
	}
	return out
}

// Get returns the safeguard of a name, or nil.
func (r Registry) Get(name phiguardv1alpha1.SafeguardName) Safeguard {
	for _, sg := range r {
		if sg.Name() == name {
			return sg
		}
	}
	return nil
}

// Rule returns the HIPAA rule of a safeguard, as the Security Rule in force
// (SecurityRule2013) states it; the zero Rule for a name not registered.
func (r Registry) Rule(name phiguardv1alpha1.SafeguardName) Rule {
	return r.RuleUnder(name, phiguardv1alpha1.RulesetSecurityRule2013)
}

// RuleUnder returns the HIPAA rule of a safeguard as ruleset rs states it
// (see Rule.Under); the zero Rule for a name not registered.
func (r Registry) RuleUnder(name phiguardv1alpha1.SafeguardName, rs phiguardv1alpha1.Ruleset) Rule {
	if sg := r.Get(name); sg != nil {
		return sg.Rule().Under(rs)
	}
	return Rule{}
}

// Defaults returns the built-in settings of every safeguard.
func (r Registry) Defaults() phiguardv1alpha1.SafeguardSettings {
	var s phiguardv1alpha1.SafeguardSettings
	for _, sg := range r {
		sg.Defaults(&s)
	}
	return s
}

// Inputs returns every input some safeguard reads, each once, in order of first use.
func (r Registry) Inputs() []Input {
	var out []Input
	for _, sg := range r {
		if rd, ok := sg.(Reader); ok {
			for _, in := range rd.Inputs() {
				if !slices.Contains(out, in) {
					out = append(out, in)
				}
			}
		}
	}
	return out
}

// Watches returns the watches of every safeguard.
func (r Registry) Watches() []Watch {
	var out []Watch
	for _, sg := range r {
		if w, ok := sg.(Watcher); ok {
			out = append(out, w.Watches()...)
		}
	}
	return out
}

// APIs returns the optional APIs some input or watch needs, each once.
func (r Registry) APIs() []*optionalapi.API {
	var out []*optionalapi.API
	add := func(api *optionalapi.API) {
		if api != nil && !slices.Contains(out, api) {
			out = append(out, api)
		}
	}
	for _, in := range r.Inputs() {
		add(in.api())
	}
	for _, w := range r.Watches() {
		add(w.API)
	}
	return out
}

// ValidateSpec applies every safeguard's own rules to settings: the warnings
// of all, and their errors joined (each a *StalledError).
func (r Registry) ValidateSpec(settings *phiguardv1alpha1.SafeguardSettings) ([]string, error) {
	var warnings []string
	var errs []error
	for _, sg := range r {
		if v, ok := sg.(SpecValidator); ok {
			w, err := v.ValidateSpec(settings)
			warnings = append(warnings, w...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return warnings, errors.Join(errs...)
}

// AddToScheme adds to s the kinds of every safeguard that brings its own.
func (r Registry) AddToScheme(s *runtime.Scheme) error {
	for _, sg := range r {
		if a, ok := sg.(SchemeAdder); ok {
			if err := a.AddToScheme(s); err != nil {
				return fmt.Errorf("adding the kinds of %s to the scheme: %w", sg.Name(), err)
			}
		}
	}
	return nil
}

// Finalizers returns the safeguards that clean up when a workload goes.
func (r Registry) Finalizers() []Finalizer {
	var out []Finalizer
	for _, sg := range r {
		if f, ok := sg.(Finalizer); ok {
			out = append(out, f)
		}
	}
	return out
}
