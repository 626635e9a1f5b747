//! Initialised Terraform directories, kept and reused across runs.
//!
//! The agent keeps nothing of a run on disk, so every action starts in a fresh directory and
//! used to run `terraform init` first: 100–130 ms with a local plugin dir, more with providers
//! to unpack — a cost a person destroying from the directory they applied in does not pay.
//! What init produces is the same for every run of one template: `.terraform/` (providers,
//! modules, and the backend's record, which does not vary since the backend is configured by
//! the environment: see [`super::files::BACKEND`]) and `.terraform.lock.hcl`. The agent keeps
//! them, keyed by the template, the Terraform binary and the plugin dir, and copies them into
//! the next run directory of the same template instead of running init.
//!
//! Safety:
//! - the cache lives beside the run directories and must be private: a directory owned by the
//!   agent's user, 0700. Anything else (another local user could have planted providers there)
//!   turns the cache off with a warning, and every action runs init as before;
//! - an entry is complete or absent: written aside, then renamed into place;
//! - large files (provider binaries) are hard links, not copies; Terraform only reads them;
//! - an entry Terraform finds out of date (a provider removed from the plugin dir, say) fails
//!   the command before it changes anything, with a message asking for `terraform init`: the
//!   executor then forgets the entry, runs init and the command again.

use super::ExecutorConfig;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The directory of the cache, under the agent's work dir (or the system temp dir).
const CACHE_DIR: &str = "goterra-init-cache";
/// What init leaves in a directory.
const DOT_TERRAFORM: &str = ".terraform";
const LOCK_FILE: &str = ".terraform.lock.hcl";
/// Files at least this large are hard-linked instead of copied.
const LINK_FROM_BYTES: u64 = 64 * 1024;
/// Entries kept; beyond, the oldest are removed when a new one is stored.
const MAX_ENTRIES: usize = 64;

/// The cache of initialised directories (see the module documentation).
#[derive(Clone, Debug)]
pub struct InitCache {
    root: PathBuf,
}

/// One template's entry.
#[derive(Clone, Debug)]
pub struct Entry {
    path: PathBuf,
}

impl InitCache {
    /// The cache under `base`, or `None` (logged) when it cannot be made private. `run_dir`, a
    /// directory the agent just created, tells which user the agent runs as.
    pub fn open(base: &Path, run_dir: &Path) -> Option<Self> {
        let root = base.join(CACHE_DIR);
        match private_dir(&root, run_dir) {
            Ok(()) => Some(Self { root }),
            Err(why) => {
                tracing::warn!(path = %root.display(), %why, "not reusing initialised Terraform directories");
                None
            }
        }
    }

    /// The entry of `template` run by this agent's Terraform and plugin dir.
    pub fn entry(&self, config: &ExecutorConfig, template: &str) -> Entry {
        let mut hash = Sha256::new();
        for part in [
            config.terraform_bin.as_os_str().as_encoded_bytes(),
            config
                .plugin_dir
                .as_deref()
                .map_or(&[][..], |dir| dir.as_os_str().as_encoded_bytes()),
            super::files::BACKEND.as_bytes(),
            template.as_bytes(),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        // Another Terraform at the same path (an upgrade) makes another entry.
        if let Ok(binary) = std::fs::metadata(&config.terraform_bin) {
            hash.update(binary.len().to_le_bytes());
            if let Ok(modified) = binary.modified()
                && let Ok(since) = modified.duration_since(std::time::UNIX_EPOCH)
            {
                hash.update(since.as_nanos().to_le_bytes());
            }
        }
        Entry {
            path: self.root.join(hex::encode(hash.finalize())),
        }
    }

    /// Copies the entry into `run_dir`; false when there is none or it cannot be copied (the
    /// run directory is then left as it was).
    pub fn restore(&self, entry: &Entry, run_dir: &Path) -> bool {
        if !entry.path.is_dir() {
            return false;
        }
        let copied = copy_tree(&entry.path.join(DOT_TERRAFORM), &run_dir.join(DOT_TERRAFORM)).and_then(|()| {
            let lock = entry.path.join(LOCK_FILE);
            if lock.exists() {
                std::fs::copy(&lock, run_dir.join(LOCK_FILE))?;
            }
            Ok(())
        });
        match copied {
            Ok(()) => true,
            Err(err) => {
                // Removed meanwhile by another agent's eviction, or a disk error: init instead.
                tracing::debug!(%err, "cannot reuse an initialised Terraform directory");
                remove_copy(run_dir);
                false
            }
        }
    }

    /// Keeps what init left in `run_dir` as the entry (unless another run stored it first).
    /// Best effort: a failure only means the next run initialises again.
    pub fn store(&self, entry: &Entry, run_dir: &Path) {
        if entry.path.exists() {
            return;
        }
        if let Err(err) = self.try_store(entry, run_dir) {
            tracing::warn!(%err, "cannot keep an initialised Terraform directory");
        }
        self.evict();
    }

    fn try_store(&self, entry: &Entry, run_dir: &Path) -> std::io::Result<()> {
        let staging = tempfile::Builder::new().prefix(".staging-").tempdir_in(&self.root)?;
        copy_tree(&run_dir.join(DOT_TERRAFORM), &staging.path().join(DOT_TERRAFORM))?;
        let lock = run_dir.join(LOCK_FILE);
        if lock.exists() {
            std::fs::copy(&lock, staging.path().join(LOCK_FILE))?;
        }
        // A run of the same template may have stored it meanwhile: theirs stays, ours goes
        // with `staging`.
        if std::fs::rename(staging.path(), &entry.path).is_ok() {
            let _ = staging.keep();
        }
        Ok(())
    }

    /// Forgets an entry Terraform found out of date, and removes its copy from `run_dir`.
    pub fn forget(&self, entry: &Entry, run_dir: &Path) {
        if let Err(err) = std::fs::remove_dir_all(&entry.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%err, path = %entry.path.display(), "cannot remove an out-of-date initialised Terraform directory");
        }
        remove_copy(run_dir);
    }

    /// Removes the oldest entries beyond [`MAX_ENTRIES`].
    fn evict(&self) {
        let Ok(listing) = std::fs::read_dir(&self.root) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = listing
            .filter_map(Result::ok)
            .filter(|dirent| !dirent.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|dirent| Some((dirent.metadata().ok()?.modified().ok()?, dirent.path())))
            .collect();
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() - MAX_ENTRIES] {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// Removes what init (or a restore) left in `run_dir`.
fn remove_copy(run_dir: &Path) {
    let _ = std::fs::remove_dir_all(run_dir.join(DOT_TERRAFORM));
    let _ = std::fs::remove_file(run_dir.join(LOCK_FILE));
}

/// Creates `dir` 0700 if needed and checks that it is a real directory, owned by the owner of
/// `ours`, that nobody else may enter.
fn private_dir(dir: &Path, ours: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(format!("cannot create it: {err}")),
    }
    let found = std::fs::symlink_metadata(dir).map_err(|err| err.to_string())?;
    let owner = std::fs::metadata(ours).map_err(|err| err.to_string())?.uid();
    if !found.is_dir() {
        return Err("not a directory".into());
    }
    if found.uid() != owner {
        return Err(format!("owned by uid {}, not the agent's {owner}", found.uid()));
    }
    if found.mode() & 0o077 != 0 {
        return Err(format!("mode {:o}: others may write there", found.mode() & 0o777));
    }
    Ok(())
}

/// Copies the tree `from` to `to` (which must not exist): symbolic links as links, large files
/// as hard links, the rest as copies with their permissions.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for dirent in std::fs::read_dir(from)? {
        let dirent = dirent?;
        let (source, target) = (dirent.path(), to.join(dirent.file_name()));
        let kind = dirent.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if dirent.metadata()?.len() < LINK_FROM_BYTES || std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn initialised(dir: &Path) {
        let providers = dir.join(".terraform/providers/registry.terraform.io/hashicorp/null/2.1.2");
        std::fs::create_dir_all(&providers).unwrap();
        std::os::unix::fs::symlink("/plugins/null/linux_amd64", providers.join("linux_amd64")).unwrap();
        std::fs::write(dir.join(".terraform/terraform.tfstate"), "{}").unwrap();
        std::fs::write(dir.join(".terraform/provider-binary"), vec![7u8; 100 * 1024]).unwrap();
        std::fs::write(dir.join(LOCK_FILE), "lock").unwrap();
    }

    #[test]
    fn an_initialised_directory_is_reused_by_the_same_template_only() {
        let base = tempfile::tempdir().unwrap();
        let (first, second, third) = (
            tempfile::tempdir_in(base.path()).unwrap(),
            tempfile::tempdir_in(base.path()).unwrap(),
            tempfile::tempdir_in(base.path()).unwrap(),
        );
        let cache = InitCache::open(base.path(), first.path()).unwrap();
        let config = ExecutorConfig::default();
        let entry = cache.entry(&config, "resource \"null_resource\" \"a\" {}");
        assert!(!cache.restore(&entry, first.path()));
        initialised(first.path());
        cache.store(&entry, first.path());
        drop(first);

        assert!(cache.restore(&entry, second.path()));
        let link = second
            .path()
            .join(".terraform/providers/registry.terraform.io/hashicorp/null/2.1.2/linux_amd64");
        assert_eq!(
            std::fs::read_link(link).unwrap(),
            Path::new("/plugins/null/linux_amd64")
        );
        assert_eq!(std::fs::read_to_string(second.path().join(LOCK_FILE)).unwrap(), "lock");
        assert_eq!(
            std::fs::read(second.path().join(".terraform/provider-binary"))
                .unwrap()
                .len(),
            100 * 1024
        );

        let other = cache.entry(&config, "resource \"null_resource\" \"b\" {}");
        assert!(!cache.restore(&other, third.path()));
        assert!(!third.path().join(".terraform").exists());

        cache.forget(&entry, second.path());
        assert!(!second.path().join(".terraform").exists());
        assert!(!second.path().join(LOCK_FILE).exists());
        assert!(!cache.restore(&entry, third.path()));
    }

    #[test]
    fn a_cache_others_may_write_to_is_not_used() {
        let base = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir_in(base.path()).unwrap();
        let root = base.path().join(CACHE_DIR);
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(InitCache::open(base.path(), run.path()).is_none());
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(InitCache::open(base.path(), run.path()).is_some());

        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::remove_dir(&root).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), &root).unwrap();
        assert!(InitCache::open(base.path(), run.path()).is_none());
    }

    #[test]
    fn the_oldest_entries_go_beyond_the_limit() {
        let base = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir_in(base.path()).unwrap();
        initialised(run.path());
        let cache = InitCache::open(base.path(), run.path()).unwrap();
        let config = ExecutorConfig::default();
        for i in 0..MAX_ENTRIES + 3 {
            cache.store(&cache.entry(&config, &format!("# template {i}")), run.path());
        }
        assert_eq!(std::fs::read_dir(&cache.root).unwrap().count(), MAX_ENTRIES);
    }
}
