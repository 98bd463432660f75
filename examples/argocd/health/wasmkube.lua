-- Argo CD health check for wasmkube.dev WasmApp and WasmRuntime: both report the same conditions,
-- so one script serves both argocd-cm keys.
-- Runs in Argo CD's gopher-lua (Lua 5.1) without the string library, so it only uses the base
-- functions and `..`. The global `obj` is the WasmApp or WasmRuntime.
--
-- The operator reports kstatus-style conditions: Ready (summary), Reconciling (a rollout is under
-- way) and Stalled (it cannot make progress without a change), each with its observedGeneration,
-- plus status.observedGeneration at the top.
--
-- Scale to zero: an app idled to 0 replicas reports Ready=True, reason ScaledToZero (the next
-- request wakes it), and a wake under way Ready=True, reason Waking; both are Healthy here, so an
-- Application does not flap with traffic. A wake that outlives wakeTimeoutSeconds is
-- Ready=False, reason WakeTimedOut, with Reconciling=True: Progressing, with the operator's words.
local health = { status = "Progressing", message = "Waiting for the operator" }

local function find_condition(conditions, wanted)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == wanted then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  local reason = condition.reason or ""
  local message = condition.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  return reason
end

local generation = obj.metadata.generation
local status = obj.status
if status == nil then
  return health
end

-- Until the operator has seen the latest spec, every condition describes an older one.
if generation ~= nil and status.observedGeneration ~= generation then
  health.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return health
end

local conditions = status.conditions
local stalled = find_condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  health.status = "Degraded"
  health.message = describe(stalled)
  return health
end

local ready = find_condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  -- A Ready condition left over from an older generation says nothing about this one.
  if ready.observedGeneration == nil or generation == nil or ready.observedGeneration == generation then
    health.status = "Healthy"
    health.message = describe(ready)
    return health
  end
end

local reconciling = find_condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  health.message = describe(reconciling)
  return health
end

-- Not ready yet, and not known to be stuck: Ready=False usually says why.
if ready ~= nil and ready.status ~= "True" and describe(ready) ~= "" then
  health.message = describe(ready)
end
return health
