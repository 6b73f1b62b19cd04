//! `/api/v1/areas` and the loading of the embedded area data, on every configured backend.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use inkingi_domain::areas::{parse_area_data, Area, AreaCode, AreaLevel};
use inkingi_domain::text::search_key;
use inkingi_store::reference::areas_version;
use inkingi_testkit::TestApp;
use serde_json::Value;

const AREAS_CSV: &str = include_str!("../../../data/areas/rwanda-areas.csv");

/// NISR's counts for the 2019-07 list, provinces first.
const COUNTS: [usize; 5] = [5, 30, 416, 2148, 14816];

fn codes(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_string())
        .collect()
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

/// Follows `next_cursor` from the first page of `path` (which has a query string) to the last.
async fn all_pages(app: &TestApp, path: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut url = path.to_string();
    loop {
        let page = app.get_json(&url, 200).await;
        pages += 1;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}&after={cursor}"),
            None => return (items, pages),
        }
    }
}

#[tokio::test]
async fn paging_through_everything_gives_nisr_counts_once_each() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let (items, pages) = all_pages(&app, "/api/v1/areas?limit=1000").await;
        assert_eq!(
            pages,
            items.len().div_ceil(1000),
            "[{db:?}] no empty last page"
        );

        let got: Vec<&str> = items.iter().map(|i| i["code"].as_str().unwrap()).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(got, sorted, "[{db:?}] ordered by code, no duplicates");

        let mut per_level: BTreeMap<AreaLevel, usize> = BTreeMap::new();
        for item in &items {
            let level: AreaLevel = item["level"].as_str().unwrap().parse().unwrap();
            let code = AreaCode::parse(item["code"].as_str().unwrap()).unwrap();
            assert_eq!(code.level(), level, "[{db:?}] {item}");
            let parent = code.parent().map(|p| p.to_string());
            assert_eq!(
                item["parent"].as_str(),
                parent.as_deref(),
                "[{db:?}] {item}"
            );
            *per_level.entry(level).or_default() += 1;
        }
        assert_eq!(
            per_level.into_values().collect::<Vec<_>>(),
            COUNTS,
            "[{db:?}]"
        );

        // Every level on its own, through the level filter.
        for (level, expected) in AreaLevel::ALL.into_iter().zip(COUNTS) {
            let (items, _) =
                all_pages(&app, &format!("/api/v1/areas?level={level}&limit=1000")).await;
            assert_eq!(items.len(), expected, "[{db:?}] level={level}");
            assert!(items.iter().all(|i| i["level"] == level.as_str()));
        }

        // A small page size over a parent gives the same list as one big page.
        let one = app
            .get_json("/api/v1/areas?parent=1101&limit=1000", 200)
            .await;
        let (small, pages) = all_pages(&app, "/api/v1/areas?parent=1101&limit=3").await;
        let small: Vec<&str> = small.iter().map(|i| i["code"].as_str().unwrap()).collect();
        assert_eq!(small, codes(&one), "[{db:?}]");
        assert_eq!(pages, small.len().div_ceil(3), "[{db:?}]");
        app.stop().await;
    }
}

#[tokio::test]
async fn filters_by_parent_level_and_name() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let provinces = app.get_json("/api/v1/areas?level=province", 200).await;
        assert_eq!(codes(&provinces), ["1", "2", "3", "4", "5"], "[{db:?}]");
        assert_eq!(provinces["next_cursor"], Value::Null);
        assert_eq!(provinces["items"][0]["parent"], Value::Null);

        let kigali = app.get_json("/api/v1/areas?parent=1", 200).await;
        assert_eq!(
            names(&kigali),
            ["Nyarugenge", "Gasabo", "Kicukiro"],
            "[{db:?}]"
        );
        let nyarugenge = app.get_json("/api/v1/areas?parent=11", 200).await;
        assert_eq!(
            codes(&nyarugenge).len(),
            10,
            "[{db:?}] sectors of Nyarugenge"
        );
        assert!(nyarugenge["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["parent"] == "11" && i["level"] == "sector"));
        // One of the cells the source had merged with its twin.
        let munanira = app.get_json("/api/v1/areas?parent=110701", 200).await;
        assert_eq!(
            names(&munanira),
            ["Kabusunzu", "Munanira", "Ntaraga", "Nyagasozi", "Rurembo"],
            "[{db:?}]"
        );

        let south = app
            .get_json("/api/v1/areas?parent=2&level=district", 200)
            .await;
        assert_eq!(codes(&south).len(), 8, "[{db:?}]");
        // `parent` means direct children: no cell sits directly in a district.
        let none = app
            .get_json("/api/v1/areas?parent=11&level=cell", 200)
            .await;
        assert!(codes(&none).is_empty(), "[{db:?}]");
        let village = app.get_json("/api/v1/areas?parent=11010102", 200).await;
        assert!(
            codes(&village).is_empty(),
            "[{db:?}] villages have no children"
        );

        // Case and diacritics do not matter.
        let gasabo = app.get_json("/api/v1/areas?q=gasabo&limit=1000", 200).await;
        assert!(
            codes(&gasabo).contains(&"12".to_string()),
            "[{db:?}] {gasabo}"
        );
        for variant in ["GASABO", "Gásabo", "%20gAsAbO%20", "G%C3%85SABO"] {
            let page = app
                .get_json(&format!("/api/v1/areas?q={variant}&limit=1000"), 200)
                .await;
            assert_eq!(codes(&page), codes(&gasabo), "[{db:?}] q={variant}");
        }
        assert!(names(&gasabo)
            .iter()
            .all(|n| search_key(n).contains("gasabo")));
        let district = app
            .get_json("/api/v1/areas?q=GASABO&level=district", 200)
            .await;
        assert_eq!(codes(&district), ["12"], "[{db:?}]");
        for q in ["cite", "CITÉ", "Cite%CC%81"] {
            let page = app.get_json(&format!("/api/v1/areas?q={q}"), 200).await;
            assert!(
                names(&page).contains(&"Cité".to_string()),
                "[{db:?}] q={q}: {page}"
            );
        }
        // LIKE wildcards in `q` are plain characters.
        for q in ["%25", "_", "g_sabo", "%5C"] {
            let page = app.get_json(&format!("/api/v1/areas?q={q}"), 200).await;
            assert!(codes(&page).is_empty(), "[{db:?}] q={q}: {page}");
        }
        // An empty search is no search.
        let empty = app.get_json("/api/v1/areas?q=&level=province", 200).await;
        assert_eq!(codes(&empty).len(), 5, "[{db:?}]");
        app.stop().await;
    }
}

#[tokio::test]
async fn one_area_with_ancestors_and_children() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let v = app.get_json("/api/v1/areas/11010102", 200).await;
        assert_eq!(v["name"], "Gihanga", "[{db:?}]");
        assert_eq!(v["level"], "village");
        assert_eq!(v["parent"], "110101");
        assert_eq!(v["child_count"], 0);
        let ancestors: Vec<(&str, &str, &str)> = v["ancestors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let s = |k: &str| a[k].as_str().unwrap();
                (s("code"), s("name"), s("level"))
            })
            .collect();
        assert_eq!(
            ancestors,
            [
                ("1", "Umujyi wa Kigali", "province"),
                ("11", "Nyarugenge", "district"),
                ("1101", "Gitega", "sector"),
                ("110101", "Akabahizi", "cell"),
            ],
            "[{db:?}]"
        );

        let p = app.get_json("/api/v1/areas/1", 200).await;
        assert_eq!(p["ancestors"], serde_json::json!([]), "[{db:?}]");
        assert_eq!(p["parent"], Value::Null);
        assert_eq!(p["child_count"], 3);
        let sector = app.get_json("/api/v1/areas/1107", 200).await;
        let cells = app.get_json("/api/v1/areas?parent=1107", 200).await;
        assert_eq!(sector["child_count"], codes(&cells).len(), "[{db:?}]");
        assert_eq!(
            sector["child_count"], 4,
            "[{db:?}] Nyakabanda's cells, split"
        );
        app.stop().await;
    }
}

async fn problem(app: &TestApp, path: &str, status: u16) -> Value {
    let res = app.get(path).await;
    assert_eq!(res.status().as_u16(), status, "[{:?}] {path}", app.kind);
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "application/problem+json", "{path}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status, "{path}: {body}");
    body
}

#[tokio::test]
async fn errors_are_problems_naming_the_parameter() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        for path in [
            "/api/v1/areas/9",
            "/api/v1/areas/99999999",
            "/api/v1/areas/110799",
        ] {
            let body = problem(&app, path, 404).await;
            assert_eq!(body["type"], "urn:inkingi:problem:not-found", "{body}");
            assert!(body["detail"]
                .as_str()
                .unwrap()
                .contains(path.rsplit('/').next().unwrap()));
        }
        let body = problem(&app, "/api/v1/areas?parent=99", 404).await;
        assert_eq!(body["field"], "parent", "{body}");

        let long_q = "a".repeat(101);
        let cases = [
            ("/api/v1/areas/abc", "code"),
            ("/api/v1/areas/123", "code"),
            ("/api/v1/areas/1101010a", "code"),
            ("/api/v1/areas?parent=12a", "parent"),
            ("/api/v1/areas?parent=", "parent"),
            ("/api/v1/areas?level=county", "level"),
            ("/api/v1/areas?level=", "level"),
            ("/api/v1/areas?limit=0", "limit"),
            ("/api/v1/areas?limit=1001", "limit"),
            ("/api/v1/areas?limit=ten", "limit"),
            ("/api/v1/areas?limit=-1", "limit"),
            ("/api/v1/areas?after=1x", "after"),
            ("/api/v1/areas?colour=red", "colour"),
            (&format!("/api/v1/areas?q={long_q}"), "q"),
        ];
        for (path, field) in cases {
            let body = problem(&app, path, 400).await;
            assert_eq!(body["field"], field, "[{db:?}] {path}: {body}");
            assert_eq!(body["type"], "urn:inkingi:problem:invalid-parameter");
            assert!(
                body["detail"].as_str().unwrap().contains(field),
                "{path}: {body}"
            );
        }
        app.stop().await;
    }
}

fn embedded() -> Vec<Area> {
    parse_area_data(AREAS_CSV).unwrap()
}

#[tokio::test]
async fn migrate_loads_areas_once_and_reloads_on_a_new_version() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let store = &app.store;
        let version = Some(areas_version().to_string());
        assert_eq!(
            store.system().reference_version("areas").await.unwrap(),
            version
        );

        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(
            store.system().reference_version("areas").await.unwrap(),
            version
        );
        let counts: Vec<i64> = store
            .areas()
            .count_areas_by_level()
            .await
            .unwrap()
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(counts, COUNTS.map(|n| n as i64), "[{db:?}]");

        let ready = app.get_json("/readyz", 200).await;
        assert_eq!(ready["status"], "ready", "[{db:?}] {ready}");
        let reference = ready["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "reference_data")
            .cloned();
        assert_eq!(reference.unwrap()["detail"], "ok", "[{db:?}] {ready}");

        // A database holding other data under the current version is left alone…
        let mut edited = embedded();
        edited[0].name = "Kigali (edited)".into();
        let extra = Area {
            code: AreaCode::parse("6").unwrap(),
            name: "Not a province".into(),
            level: AreaLevel::Province,
            parent: None,
        };
        edited.push(extra.clone());
        store
            .areas()
            .replace_areas(areas_version(), &edited)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let one = store.areas().get_area(&edited[0].code).await.unwrap();
        assert_eq!(one.unwrap().name, "Kigali (edited)", "[{db:?}]");

        // …and brought back to the embedded data when its version differs.
        store
            .areas()
            .replace_areas("nisr-old", &edited)
            .await
            .unwrap();
        let ready = app.get_json("/readyz", 200).await;
        assert!(
            ready.to_string().contains("areas nisr-old loaded"),
            "{ready}"
        );
        store.migrate().await.unwrap();
        assert_eq!(
            store.system().reference_version("areas").await.unwrap(),
            version
        );
        let one = store.areas().get_area(&edited[0].code).await.unwrap();
        assert_eq!(one.unwrap().name, "Umujyi wa Kigali", "[{db:?}]");
        assert_eq!(store.areas().get_area(&extra.code).await.unwrap(), None);
        let all = store
            .areas()
            .list_areas(&inkingi_store::areas::AreaQuery {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all,
            embedded(),
            "[{db:?}] names, levels and parents as embedded"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn store_counts_descendants_and_rejects_bad_loads() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let areas = app.store.areas();
        let per_province = areas
            .count_descendants(AreaLevel::Province, AreaLevel::District)
            .await
            .unwrap();
        let got: Vec<(&str, i64)> = per_province
            .iter()
            .map(|(a, n)| (a.code.as_str(), *n))
            .collect();
        assert_eq!(
            got,
            [("1", 3), ("2", 8), ("3", 7), ("4", 5), ("5", 7)],
            "[{db:?}]"
        );
        let villages = areas
            .count_descendants(AreaLevel::District, AreaLevel::Village)
            .await
            .unwrap();
        assert_eq!(villages.len(), 30);
        assert_eq!(
            villages.iter().map(|(_, n)| n).sum::<i64>(),
            14816,
            "[{db:?}]"
        );
        assert!(areas
            .count_descendants(AreaLevel::Cell, AreaLevel::Sector)
            .await
            .is_err());

        let codes: Vec<AreaCode> = ["110101", "1", "9", "11"]
            .iter()
            .map(|c| AreaCode::parse(c).unwrap())
            .collect();
        let found: Vec<String> = areas
            .get_areas(&codes)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.code.to_string())
            .collect();
        assert_eq!(found, ["1", "11", "110101"], "[{db:?}]");

        // A load that breaks the hierarchy fails as a whole.
        let mut orphan = embedded();
        orphan.push(Area {
            code: AreaCode::parse("99").unwrap(),
            name: "Orphan".into(),
            level: AreaLevel::District,
            parent: Some(AreaCode::parse("9").unwrap()),
        });
        orphan[1].name = "Changed".into();
        assert!(
            areas.replace_areas("broken", &orphan).await.is_err(),
            "[{db:?}]"
        );
        let mut twice = embedded();
        twice.push(twice[3].clone());
        assert!(
            areas.replace_areas("broken", &twice).await.is_err(),
            "[{db:?}]"
        );
        let kept = areas.get_area(&orphan[1].code).await.unwrap().unwrap();
        assert_ne!(kept.name, "Changed", "[{db:?}] rolled back");
        let v = app.store.system().reference_version("areas").await.unwrap();
        assert_eq!(v.as_deref(), Some(areas_version()), "[{db:?}]");
        app.stop().await;
    }
}
