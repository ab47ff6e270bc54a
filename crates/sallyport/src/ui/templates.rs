//! The page templates (minijinja, HTML auto-escaping by file name) and the stylesheet. Built-ins are
//! compiled into the binary; a file of the same name in `sallyport.ui.template_dir` replaces one.

use std::path::Path;

use minijinja::Environment;

const BUILT_IN: [(&str, &str); 6] = [
    ("base.html", include_str!("templates/base.html")),
    ("flow.html", include_str!("templates/flow.html")),
    ("field.html", include_str!("templates/field.html")),
    ("welcome.html", include_str!("templates/welcome.html")),
    ("logout.html", include_str!("templates/logout.html")),
    ("error.html", include_str!("templates/error.html")),
];

const STYLE: &str = include_str!("templates/style.css");

pub fn environment(override_dir: Option<&Path>) -> Environment<'static> {
    let mut env = Environment::new();
    for (name, src) in BUILT_IN {
        let src = override_dir
            .and_then(|d| std::fs::read_to_string(d.join(name)).ok())
            .unwrap_or_else(|| src.to_string());
        if let Err(e) = env.add_template_owned(name, src) {
            tracing::error!(template = name, error = %e, "UI template does not parse; using the built-in one");
            env.add_template(
                name,
                BUILT_IN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, s)| *s)
                    .unwrap_or(""),
            )
            .expect("built-in templates parse");
        }
    }
    env
}

/// The stylesheet with the brand colour; the colour was checked to be `#rgb`/`#rrggbb` at startup.
pub fn stylesheet(primary: &str) -> String {
    format!(":root{{--primary:{primary}}}\n{STYLE}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn built_in_templates_parse() {
        let env = super::environment(None);
        for (name, _) in super::BUILT_IN {
            env.get_template(name).unwrap();
        }
    }
}
