//! Languages of the web pages and their message catalogues.
//!
//! Catalogues are TOML files (`locales/{rw,en,fr}.toml`) compiled into the binary. Templates read
//! messages as fields of [`Messages`], so a misspelt key is a compile error rather than a blank on
//! the page. A key missing from a translation falls back to English.
//!
//! The language of a request is, in order: the `lang` query parameter (which also sets the
//! `lang` cookie), the `lang` cookie, the browser's `Accept-Language`, then [`Lang::DEFAULT`].

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::{header, HeaderMap};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Rw,
    En,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Rw, Lang::En, Lang::Fr];

    /// Kinyarwanda: it is the one language shared by nearly every Rwandan, including the sector
    /// and cell officers who use these pages most. English and French speakers' browsers announce
    /// their language, so they get it through `Accept-Language`; a browser that names none of
    /// the three most likely belongs to a Kinyarwanda speaker (few browsers offer `rw` at all).
    pub const DEFAULT: Lang = Lang::Rw;

    /// The BCP 47 tag, used in `<html lang>`, the cookie and `?lang=`.
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Rw => "rw",
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language's name in itself, as shown in the language switcher.
    pub const fn native_name(self) -> &'static str {
        match self {
            Lang::Rw => "Ikinyarwanda",
            Lang::En => "English",
            Lang::Fr => "Français",
        }
    }

    /// Parses a language tag such as `fr`, `fr-RW` or `kin`; `None` for any other language.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "rw" | "kin" => Some(Lang::Rw),
            "en" | "eng" => Some(Lang::En),
            "fr" | "fra" | "fre" => Some(Lang::Fr),
            _ => None,
        }
    }

    pub fn messages(self) -> &'static Messages {
        &CATALOGUES[self.index()]
    }

    const fn index(self) -> usize {
        match self {
            Lang::Rw => 0,
            Lang::En => 1,
            Lang::Fr => 2,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Rw => include_str!("../../locales/rw.toml"),
            Lang::En => include_str!("../../locales/en.toml"),
            Lang::Fr => include_str!("../../locales/fr.toml"),
        }
    }

    /// Groups the thousands of `n` as the language writes them (CLDR number symbols).
    pub fn format_count(self, n: i64) -> String {
        let sep = match self {
            Lang::En => ",",
            // CLDR: French groups with a narrow no-break space, Kinyarwanda with a full stop.
            Lang::Fr => "\u{202f}",
            Lang::Rw => ".",
        };
        let digits = n.unsigned_abs().to_string();
        let groups: Vec<&str> = digits
            .as_bytes()
            .rchunks(3)
            .rev()
            .filter_map(|g| std::str::from_utf8(g).ok())
            .collect();
        let sign = if n < 0 { "-" } else { "" };
        format!("{sign}{}", groups.join(sep))
    }
}

/// Declares the message keys once: the [`Messages`] struct and the list of key names the
/// catalogue test compares against.
macro_rules! messages {
    ($($key:ident),* $(,)?) => {
        /// Every message of one language.
        #[derive(Debug)]
        pub struct Messages {
            $(pub $key: String,)*
        }

        /// The key names, in declaration order.
        pub const KEYS: &[&str] = &[$(stringify!($key)),*];

        impl Messages {
            fn build(own: &Catalogue, english: &Catalogue) -> Messages {
                Messages {
                    $($key: lookup(own, english, stringify!($key)),)*
                }
            }
        }
    };
}

messages! {
    product_tagline, skip_to_content, nav_label, nav_home, nav_areas, nav_api_docs, lang_label,
    footer_licence, footer_data, footer_version,
    home_title, home_intro, counts_heading,
    levels_province, levels_district, levels_sector, levels_cell, levels_village,
    level_province, level_district, level_sector, level_cell, level_village,
    chart_heading, chart_description, chart_show_table, table_code, table_name, table_villages,
    data_unavailable_title, data_unavailable_body, data_empty,
    areas_title, areas_intro, breadcrumb_label, breadcrumb_root, areas_none_below, area_not_found,
    error_not_found_title, error_not_found_body, error_bad_request_title, error_bad_request_body,
    back_home,
    api_title, api_intro, api_machine_readable, api_contents, api_parameters, api_request_body,
    api_responses, api_schemas, api_name, api_location, api_type, api_required, api_optional,
    api_description, api_status, api_none,
    sign_in, sign_out, signed_in_as, nav_audit, account_label, change_password_notice, change_password_link, login_title, login_username, login_password, login_failed, login_expired, login_limited, login_stale_form, login_signed_out, password_title, password_intro_required, password_intro, password_current, password_new, password_again, password_rules, password_submit, password_error_summary, password_error_current, password_error_too_short, password_error_username, password_error_same, password_error_mismatch, password_error_limited, audit_title, audit_chain_head, audit_your_role, audit_your_areas, audit_filters, audit_subject_type, audit_subject_id, audit_actor, audit_from, audit_to, audit_search, audit_none, audit_col_when, audit_col_role, audit_col_action, audit_col_outcome, audit_col_subject, audit_col_area, audit_col_fields, audit_col_purpose, audit_col_client, audit_next,
    nav_changes, changes_title, changes_intro, changes_none, changes_done, changes_col_kind, changes_col_area, changes_col_by, changes_col_when, changes_col_tier, changes_col_reason, changes_col_change, changes_col_decide, changes_note, changes_approve, changes_reject,
    nav_registry, reg_search_title, reg_search_label, reg_search_hint, reg_search_button, reg_no_results, reg_col_name, reg_col_sex, reg_col_birth, reg_col_role, reg_col_household, reg_village, reg_new_household, reg_household_title, reg_address, reg_edit, reg_as_of, reg_as_of_show, reg_as_of_note, reg_now, reg_members, reg_col_national_id, reg_col_phones, reg_col_mother, reg_answers, reg_open_changes, reg_history, reg_col_field, reg_col_before, reg_col_after, reg_back, reg_stale, reg_errors_summary, reg_head, reg_given_name, reg_family_name, reg_phone, reg_yes, reg_no, reg_reason, reg_save,
    cycles_title, cycles_intro, cycles_budget, cycles_none, cycles_done, cycles_col_cycle, cycles_col_period, cycles_col_status, cycles_col_beneficiaries, cycles_col_total, cycles_col_steps, cycles_col_action, cycles_prepared_by, cycles_verified_by, cycles_approved_by, cycles_freeze, cycles_verify, cycles_approve, cycles_export, cycles_new, cycles_start, cycles_end, cycles_create,
    nav_linkage, link_title, link_intro, link_none, link_done, link_col_kind, link_col_area, link_col_weight, link_col_created, link_col_status, link_open, link_auto, link_review_title, link_engine_reason, link_decided, link_change_request, link_field, link_left, link_right, link_level, link_weight, link_survivor, link_survivor_default, link_reason, link_confirm, link_dismiss,
    nav_programmes, prog_agency, prog_all, prog_amount, prog_back_to_rule, prog_base, prog_benefit, prog_benefit_daily_wage, prog_benefit_fixed, prog_benefit_params, prog_benefit_per_member, prog_budget, prog_cap, prog_capacity, prog_code, prog_col_amount, prog_col_pages, prog_col_programme, prog_col_reason, prog_col_score, prog_col_since, prog_col_status, prog_daily_wage, prog_days, prog_description, prog_edit_link, prog_edit_title, prog_enrolments_title, prog_frequency, prog_illustrative, prog_intro, prog_name, prog_new_title, prog_no_enrolments, prog_none, prog_overlaps, prog_per_member, prog_rule, prog_rule_hint, prog_rule_ok, prog_save, prog_saved, prog_sim_cost, prog_sim_current, prog_sim_desc, prog_sim_heading, prog_sim_proposed, prog_sim_totals, prog_simulate, prog_stale, prog_target, prog_target_household, prog_target_individual, prog_title, prog_truncated,
    child_title, child_services, child_timeline, child_col_service, child_col_window, child_col_status, child_col_date, child_col_fact, child_col_detail, child_col_source, child_provisional_note, child_none,
    child_growth, child_growth_none, child_protection, child_sensitive, child_restricted,
    idv_col, idv_verify, idv_queued, idv_none,
    ind_missing_title, ind_missing_intro, ind_missing_truncated, ind_missing_none, ind_col_missing, ind_col_measured,
    ind_title, ind_intro, ind_month, ind_area, ind_show, ind_col_area, ind_total, ind_none, ind_up, ind_fic12, ind_fic24, ind_stunting, ind_wasting, ind_growth_monitoring, ind_birth_registration, ind_preprimary_enrolment,
}

impl Messages {
    /// The plural name of a level ("Districts"), as used in headings and counts.
    pub fn level_plural(&self, level: inkingi_domain::areas::AreaLevel) -> &str {
        use inkingi_domain::areas::AreaLevel::*;
        match level {
            Province => &self.levels_province,
            District => &self.levels_district,
            Sector => &self.levels_sector,
            Cell => &self.levels_cell,
            Village => &self.levels_village,
        }
    }

    /// The singular name of a level ("District").
    pub fn level_singular(&self, level: inkingi_domain::areas::AreaLevel) -> &str {
        use inkingi_domain::areas::AreaLevel::*;
        match level {
            Province => &self.level_province,
            District => &self.level_district,
            Sector => &self.level_sector,
            Cell => &self.level_cell,
            Village => &self.level_village,
        }
    }
}

type Catalogue = HashMap<String, String>;

fn parse_catalogue(lang: Lang) -> Result<Catalogue, toml::de::Error> {
    toml::from_str(lang.source())
}

/// A broken catalogue must not take the pages down: it is logged and English is used instead
/// (the unit tests keep this from ever shipping).
fn load_catalogue(lang: Lang) -> Catalogue {
    parse_catalogue(lang).unwrap_or_else(|e| {
        tracing::error!(lang = lang.code(), error = %e, "message catalogue does not parse");
        Catalogue::new()
    })
}

fn lookup(own: &Catalogue, english: &Catalogue, key: &str) -> String {
    own.get(key)
        .or_else(|| english.get(key))
        .cloned()
        // Showing the key beats a blank: it tells a translator exactly what is missing.
        .unwrap_or_else(|| key.to_string())
}

static CATALOGUES: LazyLock<[Messages; 3]> = LazyLock::new(|| {
    let english = load_catalogue(Lang::En);
    Lang::ALL.map(|lang| Messages::build(&load_catalogue(lang), &english))
});

pub const COOKIE: &str = "lang";

/// How the language of a request was chosen; an explicit choice is remembered in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// From `?lang=`: the response sets the cookie.
    Explicitly(Lang),
    /// From the cookie, the browser or the default.
    Implicitly(Lang),
}

impl Chosen {
    pub fn lang(self) -> Lang {
        match self {
            Chosen::Explicitly(l) | Chosen::Implicitly(l) => l,
        }
    }
}

/// An unsupported `?lang=` value: the caller renders a 400 page naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedLang(pub String);

impl std::fmt::Display for UnsupportedLang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query parameter 'lang': unsupported language '{}'; expected one of rw, en, fr",
            self.0.chars().take(40).collect::<String>()
        )
    }
}

/// Picks the language of a request from its query string and headers.
pub fn resolve(query: Option<&str>, headers: &HeaderMap) -> Result<Chosen, UnsupportedLang> {
    if let Some(tag) = query_lang(query.unwrap_or_default()) {
        return Lang::from_tag(&tag)
            .map(Chosen::Explicitly)
            .ok_or(UnsupportedLang(tag));
    }
    Ok(Chosen::Implicitly(implicit(headers)))
}

/// The language when the query does not name one (also used by error pages).
pub fn implicit(headers: &HeaderMap) -> Lang {
    cookie_lang(headers)
        .or_else(|| accept_language(headers))
        .unwrap_or(Lang::DEFAULT)
}

/// The last `lang` query parameter, if any.
fn query_lang(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "lang")
        .map(|(_, v)| v.into_owned())
        .last()
}

fn cookie_lang(headers: &HeaderMap) -> Option<Lang> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        // A stale or tampered cookie is ignored rather than an error: the user did not type it.
        .find_map(|(_, value)| Lang::from_tag(value.trim_matches('"')))
}

/// The supported language the browser prefers most (RFC 9110 §12.5.4 quality values).
fn accept_language(headers: &HeaderMap) -> Option<Lang> {
    let mut best: Option<(Lang, u16)> = None;
    for item in headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::from_tag) else {
            continue;
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1000), parse_quality);
        // Earlier entries win ties, as browsers list their preference first.
        if let Some(q) = q.filter(|q| *q > 0) {
            if best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
    }
    best.map(|(l, _)| l)
}

/// A quality value in thousandths; `None` when malformed.
fn parse_quality(s: &str) -> Option<u16> {
    let v: f32 = s.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&v)
        .then(|| (v * 1000.0).round() as u16)
}

/// `Set-Cookie` value remembering an explicit choice for a year. Only the server reads it, so
/// scripts are denied it (`HttpOnly`); `Lax` keeps it on links followed from other sites.
pub fn set_cookie(lang: Lang) -> String {
    format!(
        "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly",
        lang.code()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::collections::BTreeSet;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn every_catalogue_has_exactly_the_declared_keys() {
        let declared: BTreeSet<&str> = KEYS.iter().copied().collect();
        assert_eq!(declared.len(), KEYS.len(), "a key is declared twice");
        for lang in Lang::ALL {
            let cat = parse_catalogue(lang)
                .unwrap_or_else(|e| panic!("{}.toml does not parse: {e}", lang.code()));
            let present: BTreeSet<&str> = cat.keys().map(String::as_str).collect();
            let missing: Vec<_> = declared.difference(&present).collect();
            let extra: Vec<_> = present.difference(&declared).collect();
            assert!(missing.is_empty(), "{}.toml lacks {missing:?}", lang.code());
            assert!(
                extra.is_empty(),
                "{}.toml has unknown keys {extra:?}",
                lang.code()
            );
            for (k, v) in &cat {
                assert!(!v.trim().is_empty(), "{}.toml: {k} is empty", lang.code());
            }
        }
    }

    #[test]
    fn translations_differ_from_english() {
        // Guards against a catalogue copied from English and never translated.
        for lang in [Lang::Rw, Lang::Fr] {
            let m = lang.messages();
            assert_ne!(m.nav_home, Lang::En.messages().nav_home);
            assert_ne!(m.home_title, Lang::En.messages().home_title);
        }
        assert_eq!(Lang::Rw.messages().nav_home, "Ahabanza");
        assert_eq!(Lang::Fr.messages().nav_home, "Accueil");
        assert_eq!(Lang::Rw.messages().levels_village, "Imidugudu");
    }

    #[test]
    fn missing_key_falls_back_to_english_then_to_the_key() {
        let english: Catalogue = [("nav_home".to_string(), "Home".to_string())].into();
        let own: Catalogue = [("lang_label".to_string(), "Ururimi".to_string())].into();
        assert_eq!(lookup(&own, &english, "lang_label"), "Ururimi");
        assert_eq!(lookup(&own, &english, "nav_home"), "Home");
        assert_eq!(lookup(&own, &english, "nowhere"), "nowhere");
        let built = Messages::build(&own, &english);
        assert_eq!(built.nav_home, "Home");
        assert_eq!(built.lang_label, "Ururimi");
    }

    #[test]
    fn query_beats_cookie_beats_header_beats_default() {
        let h = headers(&[
            (header::COOKIE, "a=1; lang=fr"),
            (header::ACCEPT_LANGUAGE, "en-GB,en;q=0.9"),
        ]);
        assert_eq!(
            resolve(Some("lang=en"), &h),
            Ok(Chosen::Explicitly(Lang::En))
        );
        assert_eq!(resolve(Some("x=1"), &h), Ok(Chosen::Implicitly(Lang::Fr)));
        let h = headers(&[(header::ACCEPT_LANGUAGE, "de-DE,fr;q=0.5,en;q=0.8")]);
        assert_eq!(resolve(None, &h), Ok(Chosen::Implicitly(Lang::En)));
        let h = headers(&[(header::ACCEPT_LANGUAGE, "de-DE,sw;q=0.5")]);
        assert_eq!(resolve(None, &h), Ok(Chosen::Implicitly(Lang::DEFAULT)));
        assert_eq!(
            resolve(None, &HeaderMap::new()),
            Ok(Chosen::Implicitly(Lang::DEFAULT))
        );
    }

    #[test]
    fn accept_language_honours_quality_and_order() {
        let pick = |v: &str| accept_language(&headers(&[(header::ACCEPT_LANGUAGE, v)]));
        assert_eq!(pick("fr-RW, rw;q=0.9"), Some(Lang::Fr));
        assert_eq!(pick("fr;q=0.4, rw;q=0.9"), Some(Lang::Rw));
        assert_eq!(pick("en;q=0, fr;q=0.1"), Some(Lang::Fr));
        assert_eq!(pick("en;q=abc"), None);
        assert_eq!(pick("*"), None);
        assert_eq!(pick("kin, en"), Some(Lang::Rw));
    }

    #[test]
    fn bad_lang_parameter_is_named_and_bad_cookie_ignored() {
        let err = resolve(Some("lang=de"), &HeaderMap::new()).expect_err("de is unsupported");
        assert!(err.to_string().contains("'lang'"), "{err}");
        assert!(err.to_string().contains("'de'"), "{err}");
        assert!(resolve(Some("lang="), &HeaderMap::new()).is_err());
        let h = headers(&[(header::COOKIE, "lang=xx")]);
        assert_eq!(resolve(None, &h), Ok(Chosen::Implicitly(Lang::DEFAULT)));
    }

    #[test]
    fn counts_are_grouped_per_language() {
        assert_eq!(Lang::En.format_count(14837), "14,837");
        assert_eq!(Lang::Fr.format_count(14837), "14\u{202f}837");
        assert_eq!(Lang::Rw.format_count(1234567), "1.234.567");
        assert_eq!(Lang::En.format_count(999), "999");
        assert_eq!(Lang::En.format_count(-1000), "-1,000");
        assert_eq!(Lang::En.format_count(0), "0");
    }
}
