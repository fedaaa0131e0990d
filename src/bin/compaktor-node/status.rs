//! `compaktor-node status --run DIR`: a table of the nodes in a run folder,
//! from the `status.json` each node rewrites every second.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::Error;

pub(crate) fn show(run: &Path) -> Result<(), Error> {
    let mut nodes: Vec<_> = std::fs::read_dir(run)
        .map_err(|e| format!("cannot read {}: {e}", run.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("stdout").exists())
        .collect();
    nodes.sort();
    if nodes.is_empty() {
        println!("no nodes in {}", run.display());
        return Ok(());
    }
    println!(
        "{:<8} {:>7}  {:<8} {:<40} {:<9} {:>6} {:>6}  {:<9} health",
        "node", "pid", "process", "root", "incarn.", "actors", "dead", "peers"
    );
    for dir in nodes {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
        let pid = std::fs::read_to_string(dir.join("pid")).ok();
        let pid = pid.as_deref().map(str::trim).unwrap_or("-");
        let process = if pid != "-" && Path::new("/proc").join(pid).exists() {
            "running"
        } else {
            "stopped"
        };
        let status = dir.join("status.json");
        let fresh = std::fs::metadata(&status)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < Duration::from_secs(3));
        let Some(json) = std::fs::read(&status)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            println!("{name:<8} {pid:>7}  {process:<8} (no status yet)");
            continue;
        };
        let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        let peers = json["peers"].as_array().cloned().unwrap_or_default();
        let connected = peers.iter().filter(|p| p["connected"] == Value::Bool(true)).count();
        let health = if process == "stopped" {
            "-".to_owned()
        } else if fresh {
            text(&json["health"]["status"]).to_lowercase()
        } else {
            "stale".to_owned()
        };
        println!(
            "{name:<8} {pid:>7}  {process:<8} {:<40} {:<9} {:>6} {:>6}  {:<9} {health}",
            text(&json["root"]),
            text(&json["incarnation"]).chars().take(8).collect::<String>(),
            json["health"]["live_actors"].to_string(),
            json["health"]["dead_letters"]["total"].to_string(),
            format!("{connected}/{}", peers.len()),
        );
    }
    Ok(())
}
