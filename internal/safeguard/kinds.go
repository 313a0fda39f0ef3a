package safeguard

// Kinds that safeguards compare owner references and admission requests
// against, as the apiserver spells them.
const (
	kindPHIWorkload = "PHIWorkload"
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindReplicaSet  = "ReplicaSet"
	kindPod         = "Pod"
)
