//! Checks of what a description names outside the pipeline, made before anything is built and
//! without side effects: nothing is opened, created or bound, only looked at (`stat`,
//! `access`). Which properties name what is declared by their [`Role`].
//!
//! Two levels: [`conflicts`] runs before every run (an output that is also an input would be
//! emptied before it is read, and two outputs on one file interleave), [`resources`] only under
//! `--validate`, where it says what running would find (a missing input, an output directory
//! that does not exist, a malformed `host:port`); a real run meets those when it builds the
//! element, with the OS's own words.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use super::{Graph, Node};
use crate::parse::Diagnostic;
use crate::registry::{Role, Value};

/// Every set value of a property with `role`, with its element.
fn with_role(graph: &Graph, role: Role) -> Vec<(&Node, &str)> {
    let mut out = Vec::new();
    for node in graph.dag.graph().node_weights() {
        for (spec, value) in node.props.explicit() {
            if let (true, Value::Str(Some(text))) = (spec.role == role, value) {
                out.push((node, text.as_str()));
            }
        }
    }
    out
}

/// What identifies a file: device and inode when it exists (so a symlink or a hard link is the
/// same file), else its directory's canonical path and its name.
#[derive(PartialEq, Eq)]
enum FileId {
    Inode(u64, u64),
    Named(PathBuf),
}

fn file_id(path: &str) -> Option<FileId> {
    if let Ok(meta) = std::fs::metadata(path) {
        return Some(FileId::Inode(meta.dev(), meta.ino()));
    }
    let p = Path::new(path);
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(FileId::Named(dir.canonicalize().ok()?.join(p.file_name()?)))
}

/// Files that the run would destroy by its own hand: an output that is also an input (it is
/// truncated before it is read, as gst would silently do), or one file written by two sinks.
pub fn conflicts(graph: &Graph) -> Result<(), Diagnostic> {
    let reads = with_role(graph, Role::ReadsPath);
    let writes = with_role(graph, Role::WritesPath);
    for (i, (writer, wpath)) in writes.iter().enumerate() {
        let Some(wid) = file_id(wpath) else { continue };
        for (reader, rpath) in &reads {
            if file_id(rpath).as_ref() == Some(&wid) {
                let same = if rpath == wpath {
                    format!("`{wpath}`")
                } else {
                    format!("`{rpath}` (as `{wpath}`)")
                };
                return Err(Diagnostic::new(
                    format!(
                        "{} writes the file {} reads, {same}: it would empty it before it is read",
                        writer.name, reader.name
                    ),
                    writer.span.clone(),
                )
                .with_help("write to another file, then move it over the input"));
            }
        }
        for (other, opath) in &writes[i + 1..] {
            if file_id(opath).as_ref() == Some(&wid) {
                return Err(Diagnostic::new(
                    format!(
                        "{} and {} both write `{wpath}`: their bytes would overwrite each other",
                        writer.name, other.name
                    ),
                    other.span.clone(),
                )
                .with_help("give each sink a file of its own, or use a tee into one"));
            }
        }
    }
    Ok(())
}

/// What `--validate` can check without side effects: inputs exist and are readable, outputs
/// can be created in a directory that exists, `host:port` lists hold port numbers.
pub fn resources(graph: &Graph) -> Result<(), Diagnostic> {
    conflicts(graph)?;
    let fail = |node: &Node, message: String| Diagnostic::new(message, node.span.clone());
    for (node, path) in with_role(graph, Role::ReadsPath) {
        let meta = std::fs::metadata(path)
            .map_err(|e| fail(node, format!("{}: cannot read `{path}`: {e}", node.name)))?;
        if meta.is_dir() {
            return Err(fail(
                node,
                format!("{}: `{path}` is a directory, not a file", node.name),
            ));
        }
        rustix::fs::access(path, rustix::fs::Access::READ_OK).map_err(|e| {
            fail(
                node,
                format!(
                    "{}: cannot read `{path}`: {}",
                    node.name,
                    std::io::Error::from(e)
                ),
            )
        })?;
    }
    for (node, path) in with_role(graph, Role::WritesPath) {
        let p = Path::new(path);
        match std::fs::metadata(p) {
            Ok(meta) if meta.is_dir() => {
                return Err(fail(
                    node,
                    format!("{}: `{path}` is a directory, not a file", node.name),
                ))
            }
            Ok(_) => rustix::fs::access(p, rustix::fs::Access::WRITE_OK).map_err(|e| {
                fail(
                    node,
                    format!(
                        "{}: cannot write `{path}`: {}",
                        node.name,
                        std::io::Error::from(e)
                    ),
                )
            })?,
            Err(_) => {
                let dir = match p.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                if !dir.is_dir() {
                    return Err(fail(
                        node,
                        format!(
                            "{}: cannot create `{path}`: the directory `{}` does not exist",
                            node.name,
                            dir.display()
                        ),
                    ));
                }
                let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
                rustix::fs::access(dir, access).map_err(|e| {
                    fail(
                        node,
                        format!(
                            "{}: cannot create `{path}` in `{}`: {}",
                            node.name,
                            dir.display(),
                            std::io::Error::from(e)
                        ),
                    )
                })?;
            }
        }
    }
    for (node, list) in with_role(graph, Role::HostPorts) {
        for client in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let port = client.rsplit_once(':').map(|(_, port)| port);
            if port.is_none_or(|port| port.parse::<u16>().is_err()) {
                return Err(fail(
                    node,
                    format!(
                        "{}: `{client}` is not host:port with a port number 0-65535",
                        node.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
