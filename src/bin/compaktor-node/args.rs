//! Command-line arguments: a command, then `--key value` pairs and flags.

use std::collections::HashMap;

pub(crate) const USAGE: &str = "usage:
  compaktor-node certs --out DIR --ids a,b,c
  compaktor-node run (--certs DIR --id ID | --dev) [--bind HOST:PORT] [--name NAME]
                     [--status FILE] [--heartbeat-ms N] [--pause-ms N]
  compaktor-node status [--run DIR]";

/// Flags that take no value.
const FLAGS: &[&str] = &["dev"];

pub(crate) struct Args {
    pub(crate) command: String,
    values: HashMap<String, String>,
}

impl Args {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let command = args.next().ok_or("no command given")?;
        let mut values = HashMap::new();
        while let Some(arg) = args.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?
                .to_owned();
            let value = if FLAGS.contains(&key.as_str()) {
                String::new()
            } else {
                args.next().ok_or_else(|| format!("--{key} needs a value"))?
            };
            values.insert(key, value);
        }
        Ok(Args { command, values })
    }

    pub(crate) fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub(crate) fn required(&self, key: &str) -> Result<&str, String> {
        self.value(key).ok_or_else(|| format!("--{key} is required"))
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub(crate) fn number(&self, key: &str) -> Result<Option<u64>, String> {
        self.value(key)
            .map(|v| v.parse().map_err(|_| format!("--{key} takes a number, not {v:?}")))
            .transpose()
    }
}
