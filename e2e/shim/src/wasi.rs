//! What a container's Wasm sees of its pod: args, env, stdio, files and the network.

use containerd_shim_wasm::sandbox::context::RuntimeContext;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Variables the shim itself reads; they configure the host, so the guest does not see them.
pub const HOST_ENV: &[&str] = &[
    "WASMTIME_HTTP_PROXY_SOCKET_ADDR",
    "WASMTIME_HTTP_BACKLOG",
    "WASMKUBE_METRICS_ADDR",
    "WASMKUBE_DRAIN_TIMEOUT_SECONDS",
];

/// The container's env as pairs, in order; `NAME` without `=` is an empty value.
pub fn env_pairs(ctx: &impl RuntimeContext) -> Vec<(String, String)> {
    ctx.envs()
        .iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// The value of one variable (the last one wins, as in a process environment).
pub fn env_value(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

/// The env the guest gets: the container's, minus the shim's own settings.
pub fn guest_env(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter().filter(|(name, _)| !HOST_ENV.contains(&name.as_str())).cloned().collect()
}

/// argv for the guest: the OCI args with the `#function` selector removed from arg0, which is
/// shim syntax and not something the program should see.
pub fn guest_args(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    if let Some(arg0) = out.first_mut()
        && let Some((path, _)) = arg0.split_once('#')
    {
        *arg0 = path.to_string();
    }
    out
}

/// What the guest sees of the container's args and env, worked out once per container (an
/// HTTP server builds a WASI context for every request from it).
pub struct Guest {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Guest {
    pub fn of(args: &[String], env: &[(String, String)]) -> Self {
        Self { args: guest_args(args), env: guest_env(env) }
    }
}

/// A WASI context builder for one instance.
///
/// `run_wasi` executes inside the container after youki's pivot_root, so the path `/` is
/// already the container's root with every volume mounted: one preopen covers them all, and
/// the pod's `readOnlyRootFilesystem` is enforced by the mount, not by us. The network is the
/// pod's network namespace, so guests may open sockets as any pod process could.
pub fn builder(guest: &Guest) -> wasmtime::Result<WasiCtxBuilder> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&guest.args)
        .envs(&guest.env)
        .inherit_stdio()
        .inherit_network()
        .allow_ip_name_lookup(true)
        .preopened_dir("/", "/", FsPerms::ReadWrite)?;
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn function_selector_is_not_part_of_argv() {
        let args = vec!["app.wasm#init".to_string(), "--flag".to_string()];
        assert_eq!(guest_args(&args), ["app.wasm", "--flag"]);
    }

    #[test]
    fn plain_args_pass_through() {
        let args = vec!["/".to_string(), "x=y#z".to_string()];
        assert_eq!(guest_args(&args), ["/", "x=y#z"]);
    }

    #[test]
    fn host_settings_are_hidden_from_the_guest() {
        let env = pairs(&[("GREETING", "hi"), ("WASMTIME_HTTP_PROXY_SOCKET_ADDR", "0.0.0.0:80")]);
        assert_eq!(guest_env(&env), pairs(&[("GREETING", "hi")]));
    }

    #[test]
    fn last_value_of_a_name_wins() {
        let env = pairs(&[("A", "1"), ("A", "2")]);
        assert_eq!(env_value(&env, "A").as_deref(), Some("2"));
        assert_eq!(env_value(&env, "B"), None);
    }
}
