//! Text into HTML: the five characters that matter escaped. Five replacements for the few
//! pages chasti writes itself (the customer screen's refusal, the sandbox's payment page): not
//! worth a dependency.

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped_and_text_kept() {
        assert_eq!(
            super::escape(r#"<b a="1">Q&A's</b> Оплата"#),
            "&lt;b a=&quot;1&quot;&gt;Q&amp;A&#39;s&lt;/b&gt; Оплата"
        );
    }
}
