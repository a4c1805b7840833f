//! Writes the seed inputs of every fuzz target (or of the targets named as arguments) into
//! `fuzz/corpus/<target>/` (or under the directory given as another argument), so fuzzing
//! starts from meaningful inputs:
//!
//! - `client_hello`: real ClientHellos from rustls (with SNI, without, fragmented over several
//!   records, followed by application data, cut short);
//! - `path_normalize`: the path-safety corpus of the edge tests under every policy;
//! - `route_table`: pseudo-random bytes (the target builds structure from any bytes);
//! - `config_yaml`: the YAML of `examples/`, the conformance manifests and the docs;
//! - `hpack_decode`: the header blocks of RFC 7541 Appendix C (raw and Huffman, with and
//!   without eviction), list budgets from 64 bytes up, an HPACK bomb, table size updates,
//!   malformed fields and each decoding error (`hpack_seeds`);
//! - `h2_server`: client frames after the preface (`h2_seeds`): a GET, a POST with DATA, PING,
//!   SETTINGS with each parameter, WINDOW_UPDATE, RST_STREAM, PRIORITY, CONTINUATION,
//!   padding, trailers, extended CONNECT, GOAWAY, and connection errors.
//!
//! Run it with `cargo run -p fuzzing --example seed_corpus [-- <target>...]`, then fuzz, then
//! minimize with `cargo fuzz cmin` (see `docs/fuzzing.md`). Existing files of the same name are
//! overwritten (the ClientHellos differ on every run: rustls draws their random fields).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;

mod h2_seeds;
mod hpack_seeds;

/// Paths from the edge tests' path-safety corpus and the normalizer's unit tests.
const PATHS: &[&str] = &[
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/./../admin",
    "//public/../admin",
    "/public//../admin",
    "/public/x/../../admin",
    "/public/..%2fadmin",
    "/public%2f..%2fadmin",
    "/public/%2e%2e%2fadmin",
    "/public/..%5Cadmin",
    "/public\\..\\admin",
    "/public/..;/admin",
    "/public/%2e%2e;/admin",
    "/public/.;/admin",
    "/public/%00/../admin",
    "/public/%c0%ae%c0%ae/admin",
    "/public/%e0%80%ae%e0%80%ae/admin",
    "/public/%zz",
    "/public/%2",
    "/public/%252e%252e/admin",
    "/public/..%252fadmin",
    "/public/%2e",
    "///public///x",
    "/%70ublic/x",
    "/public/%41%42",
    "/public/x%3bjsessionid=1",
    "/public/caf%c3%a9",
    "/public/.../admin",
    "/public/%7euser",
    "/a/b/..",
    "/a/b/.",
    "/a.b/c..d/.e",
    "/",
    "*",
    "",
];

/// Named seed inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

/// Makes a target's seeds (given the repository's root).
type Generator = fn(&Path) -> Seeds;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Arguments naming targets pick them (all by default); another one is the directory.
    let (targets, others): (Vec<String>, Vec<String>) = std::env::args()
        .skip(1)
        .partition(|arg| fuzzing::TARGETS.iter().any(|&(target, _)| target == arg));
    let out = others
        .first()
        .map_or_else(|| root.join("fuzz/corpus"), PathBuf::from);
    let generators: [(&str, Generator); 6] = [
        ("client_hello", |_| client_hello_seeds()),
        ("path_normalize", |_| path_seeds()),
        ("route_table", |_| route_table_seeds()),
        ("config_yaml", yaml_seeds),
        ("hpack_decode", |_| hpack_seeds::all()),
        ("h2_server", |_| h2_seeds::all()),
    ];
    let mut written = 0;
    for (target, generate) in generators {
        if !targets.is_empty() && !targets.iter().any(|picked| picked == target) {
            continue;
        }
        let seeds = generate(&root);
        let dir = out.join(target);
        fs::create_dir_all(&dir).expect("create the corpus directory");
        for (name, bytes) in seeds {
            fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
            written += 1;
        }
    }
    println!("wrote {written} seeds under {}", out.display());
}

/// The first flight of a rustls client connecting to `name`.
fn rustls_hello(name: ServerName<'static>, tls12_only: bool) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("supported versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut client =
        rustls::ClientConnection::new(Arc::new(config), name).expect("client connection");
    let mut bytes = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut bytes).expect("write to a Vec");
    }
    bytes
}

fn dns(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_owned()).expect("a DNS name")
}

/// The handshake bytes of a single-record ClientHello, re-framed into records of `size` bytes.
fn fragment(hello: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in hello[5..].chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&u16::try_from(chunk.len()).expect("small").to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn client_hello_seeds() -> Vec<(String, Vec<u8>)> {
    let example = rustls_hello(dns("example.com"), false);
    let long_name = format!("{}.example", vec!["a".repeat(63); 3].join("."));
    let mut trailing = example.clone();
    trailing.extend_from_slice(&[23, 3, 3, 0, 2, 0xab, 0xcd]);
    vec![
        ("example.com".into(), example.clone()),
        ("tls12".into(), rustls_hello(dns("tls12.test"), true)),
        (
            "upper-underscore".into(),
            rustls_hello(dns("Shop_1.Example.ORG"), false),
        ),
        ("long-name".into(), rustls_hello(dns(&long_name), false)),
        (
            "ip-no-sni".into(),
            rustls_hello(ServerName::from(std::net::Ipv4Addr::LOCALHOST), false),
        ),
        ("fragment-64".into(), fragment(&example, 64)),
        ("fragment-700".into(), fragment(&example, 700)),
        ("trailing-data".into(), trailing),
        ("truncated".into(), example[..example.len() / 2].to_vec()),
        ("http".into(), b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
    ]
}

fn path_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (index, path) in PATHS.iter().enumerate() {
        // Two of the eight policies per path, different for neighbouring paths.
        for selector in [index % 8, (index + 3) % 8] {
            let mut bytes = vec![u8::try_from(selector).expect("below 8")];
            bytes.extend_from_slice(path.as_bytes());
            seeds.push((format!("{index:02}-policy{selector}"), bytes));
        }
    }
    seeds
}

fn route_table_seeds() -> Vec<(String, Vec<u8>)> {
    // Knuth's MMIX LCG: deterministic, so rerunning the generator rewrites the same seeds.
    let mut state: u64 = 0x5eed;
    (0..16)
        .map(|index| {
            let len = 64 + index * 32;
            let bytes = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    state.to_be_bytes()[0]
                })
                .collect();
            (format!("random-{index:02}"), bytes)
        })
        .collect()
}

fn yaml_seeds(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut files = Vec::new();
    collect(&root.join("examples"), "yaml", &mut files);
    collect(
        &root.join("conformance/suite/manifests"),
        "yaml",
        &mut files,
    );
    for file in files {
        let name = file.file_name().expect("a file name").to_string_lossy();
        seeds.push((name.into_owned(), fs::read(&file).expect("readable YAML")));
    }
    let mut docs = vec![root.join("README.md")];
    collect(&root.join("docs"), "md", &mut docs);
    for doc in docs {
        let text = fs::read_to_string(&doc).expect("readable Markdown");
        let stem = doc.file_stem().expect("a file name").to_string_lossy();
        for (index, block) in yaml_blocks(&text).into_iter().enumerate() {
            seeds.push((format!("{stem}-{index}.yaml"), block.into_bytes()));
        }
    }
    seeds
}

/// Files under `dir` (recursively) whose name ends with `.{extension}`, sorted.
fn collect(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory").path())
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

/// The fenced ```yaml blocks of a Markdown text.
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim_start().starts_with("```yaml") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.extend(current.take());
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}
