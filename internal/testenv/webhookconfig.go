package testenv

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UnusedWebhookConfigurations returns a validating and a mutating webhook
// configuration with the given names, pointing at the Service in namespace,
// that no request ever matches: targets for the certificate rotator's CA
// injection that never intercept anything.
func UnusedWebhookConfigurations(validating, mutating, namespace, service string) (
	*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration) {
	never := &metav1.LabelSelector{MatchLabels: map[string]string{"phiguard.io/never": "true"}}
	path := "/never"
	clientConfig := admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
		Namespace: namespace, Name: service, Path: &path}}
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
	}}
	ignore, none := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: validating},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "v.phiguard.io", ClientConfig: clientConfig, Rules: rules,
				ObjectSelector: never, FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
		}, &admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: mutating},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "m.phiguard.io", ClientConfig: clientConfig, Rules: rules,
				ObjectSelector: never, FailurePolicy: &ignore, SideEffects: &none, AdmissionReviewVersions: []string{"v1"}}},
		}
}
