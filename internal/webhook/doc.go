// Package webhook holds phiguard's own admission webhooks (the PHIWorkload
// validator, the unlabel guard) and Setup, which also registers every
// safeguard's. Each decides from the manager's cache and the same rules the
// reconciler uses, so that admission and status never disagree.
package webhook
