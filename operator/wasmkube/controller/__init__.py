"""The reconciliation engine: caches fed by Kopf's watches, a work queue, and the reconcilers."""
