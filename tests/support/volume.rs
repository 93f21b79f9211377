//! Lays files out as the kubelet mounts a ConfigMap or Secret volume, and updates them as it
//! does: each version in a folder of its own, `..data` linking to the current one, every file a
//! link through `..data`, and an update one rename of `..data` (new names linked after it,
//! dropped ones unlinked).

use std::path::{Path, PathBuf};

use anyhow::Result;

/// A ConfigMap or Secret volume mounted at `dir`.
pub struct MountedVolume {
    pub dir: PathBuf,
    version: usize,
    names: Vec<String>,
}

impl MountedVolume {
    /// Mounts `files` (name, contents) at `dir`, which is made if missing.
    pub fn new(dir: &Path, files: &[(&str, &str)]) -> Result<MountedVolume> {
        std::fs::create_dir_all(dir)?;
        let mut volume = MountedVolume {
            dir: dir.to_owned(),
            version: 0,
            names: Vec::new(),
        };
        volume.update(files)?;
        Ok(volume)
    }

    /// Writes a new version holding `files` and points `..data` at it in one rename.
    pub fn update(&mut self, files: &[(&str, &str)]) -> Result<()> {
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.join(&version))?;
        for (name, contents) in files {
            std::fs::write(self.dir.join(&version).join(name), contents)?;
        }
        let staged = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &staged)?;
        std::fs::rename(&staged, self.dir.join("..data"))?;
        let names: Vec<String> = files.iter().map(|(name, _)| (*name).to_owned()).collect();
        for name in names.iter().filter(|n| !self.names.contains(n)) {
            std::os::unix::fs::symlink(format!("..data/{name}"), self.dir.join(name))?;
        }
        for name in self.names.iter().filter(|n| !names.contains(n)) {
            std::fs::remove_file(self.dir.join(name))?;
        }
        self.names = names;
        Ok(())
    }
}
