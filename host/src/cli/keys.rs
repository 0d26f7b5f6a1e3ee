//! `baton keygen` and `baton plugin sign`.

use anyhow::{Context, Result, bail};
use baton::registry::signing;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Path prefix of the key files: writes PREFIX.key (secret, mode 0600) and PREFIX.pub.
    #[arg(long, default_value = "baton-publisher")]
    out: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// Secret key file written by `baton keygen`.
    #[arg(long)]
    key: PathBuf,
    /// The component to sign.
    file: PathBuf,
    /// Where to write the signature [default: FILE.sig].
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn keygen(args: KeygenArgs) -> Result<()> {
    let secret_path = with_suffix(&args.out, "key");
    let public_path = with_suffix(&args.out, "pub");
    for path in [&secret_path, &public_path] {
        if path.exists() && !args.force {
            bail!(
                "{} already exists; pass --force to replace it",
                path.display()
            );
        }
    }
    let key = signing::generate_key();
    let public = signing::encode_public_key(&key.verifying_key());
    write_private(&secret_path, &signing::encode_secret_key(&key))?;
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!("secret key: {} (keep it private)", secret_path.display());
    println!("public key: {}", public_path.display());
    println!();
    println!("To trust it, add to the server's baton.toml:");
    println!();
    println!("[[trusted_keys]]");
    println!(
        "name = \"{}\"",
        args.out
            .file_name()
            .map_or("publisher".into(), |n| n.to_string_lossy())
    );
    println!("public_key = \"{public}\"");
    Ok(())
}

pub fn sign(args: SignArgs) -> Result<()> {
    let key_text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read key file {}", args.key.display()))?;
    let key = signing::parse_secret_key(&key_text).with_context(|| {
        format!(
            "{} is not a secret key written by `baton keygen`",
            args.key.display()
        )
    })?;
    let component = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let signature = signing::sign(&key, &component);
    let out = args.out.unwrap_or_else(|| with_suffix(&args.file, "sig"));
    let json = serde_json::to_string_pretty(&signature)?;
    std::fs::write(&out, format!("{json}\n"))
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("signed {} ({})", args.file.display(), signature.digest);
    println!("signature: {}", out.display());
    Ok(())
}

/// `path` with `.suffix` appended (not replacing an existing extension).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("cannot write {}", path.display()))
}
