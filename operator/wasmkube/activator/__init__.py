"""The activator: holds the requests of a scale-to-zero app at zero, wakes it, forwards them.

It is in the request path only while an app has no Ready pod (the operator points the app's
Service at it then, and at the pods otherwise), so an awake app pays nothing for it. One module
per job: `routing` (which app a request is for), `endpoints` (the app's Ready pods), `holding`
(bounded per-app queues), `waking` (scaling through /scale), `proxy` (forwarding), `idle` (when
to go back to zero), `metrics`, `config` (its settings) and `server` (the process that ties them
together).
"""
