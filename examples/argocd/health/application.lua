-- Argo CD health check for argoproj.io/Application, for the app of apps in ../root.yaml.
-- Argo CD stopped assessing child Applications' health in 1.8, so without this check a sync wave of
-- Applications counts as healthy as soon as the Application objects exist, and the WasmApps (wave 1)
-- would be applied before the operator (wave 0) runs. With it, a wave waits until its child
-- Application reports Healthy.
local health = { status = "Progressing", message = "" }
local status = obj.status
if status ~= nil and status.health ~= nil and status.health.status ~= nil then
  health.status = status.health.status
  health.message = status.health.message or ""
end
return health
