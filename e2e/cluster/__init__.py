"""The local cluster: etcd, kube-apiserver, controller-manager, scheduler, KWOK and a registry
as plain processes on 127.0.0.1 (`python -m e2e.cluster.localcluster up|down|status|env`)."""
