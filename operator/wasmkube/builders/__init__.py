"""Pure builders: desired Kubernetes objects from a spec. No I/O here, ever."""
