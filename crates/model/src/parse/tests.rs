use super::limits::MAX_DOCUMENTS;
use super::*;
use crate::kind::{Kind, ObjectKey};
use std::sync::Arc;

const ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cart}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /cart}}]
    backendRefs: [{name: cart, port: 80, weight: 3}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
---
apiVersion: portcullis.dev/v1alpha1
kind: Backend
metadata: {name: direct, namespace: shop}
spec:
  endpoints: [{ip: 127.0.0.1, port: 3000, weight: 2}]
---
"#;

#[test]
fn documents_are_typed_and_unknown_kinds_skipped() {
    let parsed = parse_documents(ROUTE).expect("valid YAML");
    assert_eq!(parsed.objects.len(), 2);
    assert_eq!(
        parsed.skipped,
        vec!["apps/v1 Deployment ignored".to_owned()]
    );
    let Object::HttpRoute(route) = &parsed.objects[0] else {
        panic!("not a route")
    };
    let rules = route.spec.rules.as_ref().expect("rules");
    assert_eq!(
        rules[0].backend_refs.as_ref().expect("refs")[0].weight,
        Some(3)
    );
    let Object::Backend(backend) = &parsed.objects[1] else {
        panic!("not a backend")
    };
    assert_eq!(backend.spec.endpoints[0].port, 3000);
}

#[test]
fn metadata_nothing_reads_is_not_kept() {
    let parsed = parse_documents(
        "apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels: {app: web}
  generation: 3
  annotations: {kubectl.kubernetes.io/last-applied-configuration: '{\"big\": true}'}
  managedFields: [{manager: kubectl, operation: Apply, fieldsV1: {f:spec: {}}}]
  ownerReferences: [{apiVersion: v1, kind: Pod, name: p, uid: u}]
  finalizers: [example.com/keep]
spec: {ports: [{port: 80}]}
",
    )
    .expect("parses");
    let [Object::Service(service)] = parsed.objects.as_slice() else {
        panic!("one Service: {:?}", parsed.objects);
    };
    let meta = &service.metadata;
    assert_eq!(meta.name.as_deref(), Some("web"));
    assert_eq!(meta.namespace.as_deref(), Some("shop"));
    assert_eq!(meta.generation, Some(3));
    assert_eq!(meta.labels.as_ref().and_then(|l| l.get("app")), Some("web"));
    // Nothing else of the metadata is kept.
    assert_eq!(
        serde_json::to_value(meta).expect("serializable"),
        serde_json::json!({"name": "web", "namespace": "shop", "labels": {"app": "web"}, "generation": 3})
    );
}

#[test]
fn missing_namespace_defaults_to_default() {
    let parsed = parse_documents(ROUTE).expect("valid YAML");
    assert_eq!(
        parsed.objects[0].key().to_string(),
        "HTTPRoute default/cart"
    );
    assert_eq!(parsed.objects[1].key().to_string(), "Backend shop/direct");
}

#[test]
fn bad_field_names_object_and_path() {
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: shop}\nspec:\n  rules:\n  - matches: [{path: {type: Fuzzy, value: /}}]\n";
    let error = parse_documents(text).expect_err("unknown path type");
    let message = error.to_string();
    assert!(message.contains("HTTPRoute shop/web"), "{message}");
    assert!(
        message.contains("spec.rules[0].matches[0].path.type"),
        "{message}"
    );
}

#[test]
fn a_composition_loads_with_its_route_from_one_file() {
    let text = "apiVersion: portcullis.dev/v1alpha1
kind: Composition
metadata: {name: product-page, namespace: shop}
spec:
  pathPattern: /products/{id}
  timeout: 2s
  maxPartBytes: 65536
  merge: {type: Deep}
  parts:
  - name: product
    backendRef: {name: catalogue, port: 8080}
    path: /products/{request.path.id}
    headers: {forward: [authorization]}
  - name: price
    backendRef: {group: portcullis.dev, kind: Backend, name: pricing, namespace: billing}
    path: /prices/{response.product.json/sku}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: portcullis.dev, kind: Composition, name: product-page}}]
";
    let parsed = parse_documents(text).expect("valid YAML");
    assert_eq!(parsed.objects.len(), 2);
    assert_eq!(
        parsed.objects[0].key(),
        ObjectKey::new(Kind::Composition, "shop", "product-page")
    );
    let Object::Composition(composition) = &parsed.objects[0] else {
        panic!("not a Composition: {:?}", parsed.objects[0].kind())
    };
    let spec = &composition.spec;
    assert_eq!(
        spec.max_part_bytes,
        Some(crate::client_policy::ByteQuantity::Number(65536))
    );
    assert_eq!(
        spec.merge.as_ref().and_then(|m| m.kind.as_deref()),
        Some("Deep")
    );
    let names: Vec<&str> = spec.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["product", "price"]);
    assert_eq!(spec.parts[1].backend_ref.kind.as_deref(), Some("Backend"));
    assert_eq!(
        spec.parts[1].backend_ref.namespace.as_deref(),
        Some("billing")
    );

    let mut store = crate::Store::new();
    for object in parsed.objects {
        store.insert(object);
    }
    let key = ("shop".into(), "product-page".into());
    assert!(store.compositions.contains_key(&key));
    assert_eq!(store.len(), 2);
    let removed = store.remove(&ObjectKey::new(Kind::Composition, "shop", "product-page"));
    assert!(removed && store.compositions.is_empty());
}

#[test]
fn a_composition_with_a_misspelt_field_names_it() {
    let text = "apiVersion: portcullis.dev/v1alpha1\nkind: Composition\nmetadata: {name: page, namespace: shop}\nspec:\n  parts:\n  - name: a\n    backendRef: {name: s, port: 80}\n    requird: true\n";
    let message = parse_documents(text)
        .expect_err("unknown field")
        .to_string();
    assert!(message.contains("Composition shop/page"), "{message}");
    assert!(message.contains("spec.parts[0]"), "{message}");
    assert!(message.contains("requird"), "{message}");
}

#[test]
fn invalid_yaml_is_an_error() {
    assert!(matches!(parse_documents("a: [b"), Err(ParseError::Yaml(_))));
}

/// `count` EndpointSlices, one document each.
fn endpoint_slices(count: usize) -> String {
    (0..count)
        .map(|index| {
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s-{index}, namespace: shop, labels: {{kubernetes.io/service-name: s}}}}\naddressType: IPv4\nendpoints: [{{addresses: [10.0.{}.{}]}}]\n---\n",
                index / 256 % 256,
                index % 256
            )
        })
        .collect()
}

#[test]
fn five_thousand_documents_parse() {
    // serde-saphyr's default budget stops at 1,024 documents.
    let parsed = parse_documents(&endpoint_slices(5_000)).expect("5,000 documents are allowed");
    assert_eq!(parsed.objects.len(), 5_000);
}

#[test]
fn more_documents_than_the_limit_are_refused_by_name() {
    let text = "---\na: 1\n".repeat(MAX_DOCUMENTS + 1);
    let error = parse_documents(&text).expect_err("over the document limit");
    assert_eq!(
        error,
        ParseError::Limit("file has more than 100000 YAML documents (limit)".to_owned())
    );
}

#[test]
fn alias_bomb_is_refused() {
    // "Billion laughs": each level repeats the previous one ten times, so the last alias would
    // expand to 10^9 scalars.
    let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*l{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{items}]\n"));
    }
    let error = parse_documents(&text).expect_err("alias bomb");
    assert_eq!(
        error,
        ParseError::Limit(
            "file expands YAML aliases to more than 1000000 copied events (alias expansion \
             limit, which stops alias bombs)"
                .to_owned()
        )
    );
}

#[test]
fn deep_nesting_is_refused_by_name() {
    let text = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let error = parse_documents(&text).expect_err("too deep");
    assert_eq!(
        error,
        ParseError::Limit(
            "file nests YAML mappings and sequences more than 64 levels deep (limit)".to_owned()
        )
    );
}

/// The result of `text` parsed piece by piece, and parsed as one stream, side by side: object
/// keys and skipped kinds, or the error.
fn both_ways(
    text: &str,
) -> (
    Result<Vec<String>, ParseError>,
    Result<Vec<String>, ParseError>,
) {
    let summary = |parsed: Result<Parsed, ParseError>| {
        parsed.map(|parsed| {
            let objects = parsed.objects.iter().map(|object| object.key().to_string());
            objects.chain(parsed.skipped).collect()
        })
    };
    (summary(parse_documents(text)), summary(parse_stream(text)))
}

#[test]
fn pieces_cover_the_text_and_cut_at_markers() {
    let text = "# leading comment\n---\na: 1\n--- {b: 2}\n---\tc: 3\n---x: 4\n...\n# after\n---\r\nd: 5\r\n";
    let pieces = split_documents(text);
    assert_eq!(pieces.concat(), text);
    assert_eq!(
        pieces,
        vec![
            "# leading comment\n",
            "---\na: 1\n",
            "--- {b: 2}\n",
            "---\tc: 3\n---x: 4\n...\n",
            "# after\n",
            "---\r\nd: 5\r\n",
        ]
    );
    assert!(split_documents("").is_empty());
}

#[test]
fn texts_a_line_cut_could_misread_stay_whole() {
    for text in [
        "%YAML 1.2\n---\na: 1\n---\nb: 2\n",
        "---\na: 1\n%TAG !e! tag:example.com,2000:\n--- !e!x\nb: 2\n",
        "a: 1\r---\rb: 2\n---\nc: 3\n",
        "a: 1\n\u{feff}---\nb: 2\n---\nc: 3\n",
    ] {
        assert_eq!(split_documents(text), vec![text], "{text:?}");
    }
    // A byte order mark at the very start is allowed and cut like any text.
    assert_eq!(
        split_documents("\u{feff}---\na: 1\n---\nb: 2\n"),
        vec!["\u{feff}---\na: 1\n", "---\nb: 2\n"]
    );
}

#[test]
fn pieces_parse_as_the_whole_text_does() {
    let texts = [
        ROUTE.to_owned(),
        format!("# header\n{ROUTE}...\n# trailing\n"),
        // Empty and null documents are not numbered: the bad Service is document 2.
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n~\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: none}]}\n---\nkind: HTTPRoute\n".to_owned(),
        "---\nname: x\n...\n--- top level scalar\n".to_owned(),
        // Not YAML in the middle: the whole text's parse words the error.
        format!("{ROUTE}---\napiVersion: v1\nkind: Service\nmetadata: {{name: [unclosed}}\n"),
        "---\napiVersion: v1\nkind: Namespace\nmetadata: &m {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: *m\n".to_owned(),
        "%YAML 1.2\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n".to_owned(),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n...\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n".to_owned(),
        String::new(),
        "# only a comment\n".to_owned(),
    ];
    for text in &texts {
        let (pieces, whole) = both_ways(text);
        assert_eq!(pieces, whole, "{text}");
    }
    let (pieces, _) = both_ways(&texts[2]);
    assert!(
        matches!(pieces, Err(ParseError::Document { document: 2, .. })),
        "{pieces:?}"
    );
    let (pieces, _) = both_ways(&texts[4]);
    let Err(ParseError::Yaml(message)) = pieces else {
        panic!("not YAML: {pieces:?}")
    };
    // Line 4 of its piece.
    assert!(message.contains("line 24 column 18"), "{message}");
}

#[test]
fn what_the_pieces_use_adds_up_to_the_whole_text() {
    let text = format!(
        "# c\n{ROUTE}...\n---\nx: &a [1, 2]\ny: *a\n<<: {{z: 3}}\n---\n~\n---\n{}",
        endpoint_slices(3)
    );
    let pieces = split_documents(&text);
    assert!(pieces.len() > 5, "{pieces:?}");
    let added = pieces
        .iter()
        .map(|piece| read_values(piece).1)
        .fold(limits::Usage::default(), limits::Usage::add);
    assert_eq!(added.as_one_parse(), read_values(&text).1);
}

#[test]
fn limits_hold_for_the_file_not_each_document() {
    // 600 ConfigMaps of 10 anchors and 100 aliases each: each document is well within the
    // limits, the file has more than 50,000 aliases.
    let anchors: String = (0..10).map(|i| format!("  a{i}: &a{i} v{i}\n")).collect();
    let aliases: String = (0..100)
        .map(|i| format!("  k{i}: *a{}\n", i % 10))
        .collect();
    let document = format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n{anchors}{aliases}"
    );
    let text = document.repeat(600);
    assert!(split_documents(&text).len() == 600);
    assert_eq!(
        parse_documents(&text).expect_err("too many aliases"),
        ParseError::Limit("file uses more than 50000 YAML aliases (limit)".to_owned())
    );
    assert!(
        parse_documents(&document.repeat(400)).is_ok(),
        "40,000 aliases are allowed"
    );
}

#[test]
fn a_spent_file_budget_parses_no_more_documents() {
    let budget = FileBudget::new();
    let first = parse_document(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
        &budget,
    );
    assert!(first.is_valid());
    budget.charge(&limits::Usage::unaccounted());
    let skipped = parse_document(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
        &budget,
    );
    assert!(!skipped.is_valid());
    assert_eq!(skipped.objects().count(), 0);
}

#[test]
fn reused_pieces_keep_their_objects() {
    let text = endpoint_slices(300);
    let budget = FileBudget::new();
    let before: Vec<ParsedDocument> = split_documents(&text)
        .into_iter()
        .map(|piece| parse_document(piece, &budget))
        .collect();
    let old = join_documents(&text, &before.iter().collect::<Vec<_>>()).expect("valid");

    // Document 151 changes; the file is put together from 299 kept pieces and one new one.
    let edited = text.replacen("10.0.0.150]", "10.0.9.9]", 1);
    assert_ne!(edited, text);
    let pieces = split_documents(&edited);
    let new_piece = parse_document(pieces[150], &FileBudget::new());
    let mut documents: Vec<&ParsedDocument> = before.iter().collect();
    documents[150] = &new_piece;
    let new = join_documents(&edited, &documents).expect("valid");

    assert_eq!(new.objects.len(), 300);
    for (index, (old, new)) in old.objects.iter().zip(&new.objects).enumerate() {
        let (Object::EndpointSlice(old), Object::EndpointSlice(new)) = (old, new) else {
            panic!("not a slice")
        };
        assert_eq!(
            Arc::ptr_eq(old, new),
            index != 150,
            "document {}",
            index + 1
        );
    }
}

#[test]
fn pieces_agree_with_the_whole_text_under_line_edits() {
    // Every line of a varied text deleted, or preceded by a marker or a tricky line: cutting at
    // markers must never change what the text means.
    let base = format!(
        "# header\n{ROUTE}...\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: notes}}\ndata:\n  text: |\n    ---\n    ...\n  anchored: &a value\n  alias: *a\n---\n{}",
        endpoint_slices(2)
    );
    let lines: Vec<&str> = base.split_inclusive('\n').collect();
    let inserts = [
        "---\n",
        "...\n",
        "--- |\n",
        "  ---\n",
        "---x\n",
        "--- # c\n",
        "\"a\n",
    ];
    let mut variants = 0;
    let mut valid = 0;
    for index in 0..lines.len() {
        let mut deleted = lines.clone();
        deleted.remove(index);
        let mut texts = vec![deleted.concat()];
        for insert in inserts {
            let mut inserted = lines.clone();
            inserted.insert(index, insert);
            texts.push(inserted.concat());
        }
        for text in texts {
            let (pieces, whole) = both_ways(&text);
            assert_eq!(pieces, whole, "{text}");
            variants += 1;
            valid += usize::from(pieces.is_ok());
        }
    }
    assert!(variants > 200);
    assert!(valid > variants / 8, "{valid} of {variants} variants parse");
}

/// The cut as it was first written, visiting every line: the reference `split_documents`
/// (which visits only the lines that can matter) must agree with.
fn split_line_by_line(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    if bytes
        .iter()
        .enumerate()
        .any(|(index, byte)| *byte == b'\r' && bytes.get(index + 1) != Some(&b'\n'))
    {
        return vec![text];
    }
    let bom = "\u{feff}".as_bytes();
    let first_line = if bytes.starts_with(bom) { bom.len() } else { 0 };
    let is_marker = |line: &[u8], marker: &[u8]| {
        line.starts_with(marker)
            && matches!(
                line.get(marker.len()),
                None | Some(b' ' | b'\t' | b'\r' | b'\n')
            )
    };
    let mut pieces = Vec::new();
    let mut push = |start: usize, end: usize| {
        if end > start {
            pieces.push(&text[start..end]);
        }
    };
    let mut start = 0;
    let mut markers = 0_usize;
    let later = bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .map(|(newline, _)| (newline + 1, newline + 1));
    for (line, content) in std::iter::once((0, first_line)).chain(later) {
        let rest = &bytes[content.min(bytes.len())..];
        match rest.first() {
            Some(b'%') => return vec![text],
            Some(0xEF) if line != 0 && rest.starts_with(bom) => return vec![text],
            Some(b'-') if is_marker(rest, b"---") => {
                markers += 1;
                if markers > super::limits::MAX_DOCUMENTS {
                    return vec![text];
                }
                push(start, line);
                start = line;
            }
            Some(b'.') if is_marker(rest, b"...") => {
                let end = rest
                    .iter()
                    .position(|byte| *byte == b'\n')
                    .map_or(text.len(), |newline| content + newline + 1);
                push(start, end);
                start = end;
            }
            _ => {}
        }
    }
    push(start, text.len());
    pieces
}

#[test]
fn the_cut_visiting_only_lines_that_matter_agrees_with_the_cut_visiting_every_line() {
    // Texts made of lines that start with every byte the cut looks at, and of markers in
    // every form, in random order (a fixed xorshift sequence, so a failure reproduces).
    const LINES: [&str; 24] = [
        "---\n",
        "--- \n",
        "---\t\n",
        "--- {a: 1}\n",
        "---x\n",
        "--\n",
        "-\n",
        "- item\n",
        "...\n",
        "... \n",
        "...x\n",
        "..\n",
        "%YAML 1.2\n",
        "%TAG ! x\n",
        "a: 1\n",
        "  - b\n",
        "\u{feff}c: 2\n",
        "\u{feff}---\n",
        "\r\n",
        "d: 3\r\n",
        "e\rf\n",
        "",
        "\n",
        "# ---\n",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut cut_into_several = 0;
    for _ in 0..5_000 {
        let count = next() % 24;
        let mut text = String::new();
        for _ in 0..count {
            let line = LINES[usize::try_from(next() % 24).unwrap_or(0)];
            // Rarely the lines that send the whole text to the parser (directives, lone
            // carriage returns, a later byte order mark), so that most texts are cut.
            if (line.starts_with('%') || line.contains("\rf") || line.starts_with('\u{feff}'))
                && next() % 8 != 0
            {
                continue;
            }
            text.push_str(line);
        }
        if next() % 4 == 0 {
            text.pop(); // no final line feed
        }
        let pieces = split_documents(&text);
        assert_eq!(pieces, split_line_by_line(&text), "{text:?}");
        assert_eq!(pieces.concat(), text);
        cut_into_several += usize::from(pieces.len() > 1);
    }
    assert!(
        cut_into_several > 2_000,
        "only {cut_into_several} texts were cut: the test shows little"
    );
}
