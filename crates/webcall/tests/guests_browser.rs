//! Guest links in real headless Chromium against the real server, in English
//! then in Russian: the owner, in the call, opens "Invite guests" from the
//! participant list and makes a link; a second browser with no account opens
//! it, sees the room's name, types a name, gets the camera pre-join and joins;
//! both decode each other's video and both show the "guest" badge. The link is
//! then revoked from the dialog, and opening it again says it does not work.
//! Screenshots land in the target directory's `screenshots/guests-*.png`.

mod support;
mod webclient;

use fantoccini::Client;
use serde_json::{json, Value};
use support::{spawn_app, TestApp};
use webclient::{
    call_path, click, click_join, decoding, eventually, fill, join_call, js, screenshot, set_lang,
    tile_of, Driver, Engine,
};

async fn sign_in(browser: &Client, app: &TestApp, user: &str) {
    let token = app.user_token(user).await;
    browser.goto(&app.url("/static/auth.html")).await.unwrap();
    browser
        .execute(
            "localStorage.setItem('webcall.token', arguments[0]); localStorage.setItem('webcall.token_exp', String(Date.now() + 3600e3)); localStorage.setItem('webcall.lang', 'en'); return true;",
            vec![json!(token)],
        )
        .await
        .unwrap();
}

/// Opens the participant list unless it is open.
async fn open_people(browser: &Client) {
    let hidden = "return document.querySelector('[data-testid=people-panel]').hidden;";
    if js(browser, hidden).await == json!(true) {
        click(browser, "[data-testid=toggle-people]").await;
    }
}

/// Clicks "Invite guests" (shown and on top, as the screenshots show: a
/// WebDriver click calls it "not interactable" in headless Chromium, so the
/// click is the page's own).
async fn open_invites(ada: &Client) {
    eventually(
        ada,
        "Invite guests shown",
        "const b = document.querySelector('[data-testid=invite-guests]'); return !!b && b.offsetParent !== null;",
    )
    .await;
    js(
        ada,
        "document.querySelector('[data-testid=invite-guests]').click(); return true;",
    )
    .await;
}

/// Makes a link from the call's "Invite guests" dialog; returns its address.
async fn make_link(ada: &Client) -> String {
    open_people(ada).await;
    open_invites(ada).await;
    eventually(
        ada,
        "the invite dialog open",
        "return document.querySelector('[data-testid=invite-dialog]').open;",
    )
    .await;
    click(ada, "[data-testid=invite-create]").await;
    let url = eventually(
        ada,
        "the new link shown",
        "const u = document.querySelector('[data-testid=invite-url]'); return !u.closest('[hidden]') && u.value;",
    )
    .await;
    url.as_str().unwrap().to_owned()
}

struct Lang {
    code: &'static str,
    badge: &'static str,
    continue_: &'static str,
    bad_link: &'static str,
}

const EN: Lang = Lang {
    code: "en",
    badge: "guest",
    continue_: "Continue",
    bad_link: "This invite link does not work",
};

const RU: Lang = Lang {
    code: "ru",
    badge: "гость",
    continue_: "Продолжить",
    bad_link: "Эта ссылка-приглашение не работает",
};

#[tokio::test]
async fn a_guest_joins_by_link_and_both_see_each_other_and_the_badge() {
    let Some(driver) = Driver::start(Engine::Chromium).await else {
        return;
    };
    let app = spawn_app(&[]).await;
    let ada = driver.browser(1280, 800).await;
    sign_in(&ada, &app, "ada").await;
    join_call(&ada, &app.url("/r/team")).await;

    for (round, lang) in [EN, RU].into_iter().enumerate() {
        set_lang(&ada, lang.code).await;
        let url = make_link(&ada).await;
        assert!(url.contains("/join#"), "{url}");
        screenshot(&ada, &format!("guests-invite-{}-1280", lang.code)).await;
        click(&ada, "[data-testid=invite-close]").await;

        // Someone without an account, in a browser of their own.
        let guest = driver.browser(1280, 800).await;
        guest.goto(&app.url("/static/404.html")).await.unwrap();
        js(
            &guest,
            &format!(
                "localStorage.setItem('webcall.lang', '{}'); return true;",
                lang.code
            ),
        )
        .await;
        guest.goto(&url).await.unwrap();
        let room = eventually(
            &guest,
            "the room's name on the landing page",
            "const r = document.querySelector('[data-testid=guest-room]'); return document.querySelector('[data-testid=guest-form]')?.hidden === false && r.textContent;",
        )
        .await;
        assert_eq!(room, "team");
        assert_eq!(
            js(&guest, "return location.hash;").await,
            json!(""),
            "the token leaves the address bar"
        );
        let submit = js(
            &guest,
            "return document.querySelector('[data-testid=guest-submit]').textContent.trim();",
        )
        .await;
        assert_eq!(submit, lang.continue_);
        let name = format!("Anna {round}");
        fill(&guest, "[data-testid=guest-name]", &name).await;
        screenshot(&guest, &format!("guests-landing-{}-1280", lang.code)).await;
        click(&guest, "[data-testid=guest-submit]").await;
        eventually(
            &guest,
            "the pre-join screen with the camera",
            "const v = document.querySelector('[data-testid=prejoin-video]'); \
             return document.querySelector('[data-testid=prejoin]')?.hidden === false && v.videoWidth > 0;",
        )
        .await;
        click_join(&guest).await;

        // Both see each other: video decoded each way, the badge on the guest.
        let anna_at_ada = tile_of(&ada, &name).await;
        let ada_at_anna = tile_of(&guest, "ada").await;
        call_path(&ada, &anna_at_ada, decoding)
            .await
            .expect("ada decodes the guest's video");
        call_path(&guest, &ada_at_anna, decoding)
            .await
            .expect("the guest decodes ada's video");
        let badge = eventually(
            &ada,
            "the guest badge on the guest's tile",
            &format!("const b = document.querySelector('[data-peer-id=\"{anna_at_ada}\"] [data-testid=guest-badge]'); return b && b.textContent;"),
        )
        .await;
        assert_eq!(badge, lang.badge);
        let own = eventually(
            &guest,
            "the guest's own tile marked",
            "const b = document.querySelector('[data-testid=local-tile] [data-testid=guest-badge]'); return b && b.textContent;",
        )
        .await;
        assert_eq!(own, lang.badge);
        open_people(&ada).await;
        let row: Value = eventually(
            &ada,
            "the guest marked in the participant list",
            "const g = document.querySelector('[data-testid=person-guest]'); return g && g.textContent;",
        )
        .await;
        assert_eq!(row, lang.badge);
        assert_eq!(
            js(&guest, "return !!document.querySelector('[data-testid=invite-guests]') && !document.querySelector('[data-testid=invite-guests]').hidden;").await,
            json!(false),
            "a guest invites nobody"
        );
        screenshot(&ada, &format!("guests-call-{}-1280", lang.code)).await;

        // Revoke it: the guest stays, the link works no more.
        open_people(&ada).await;
        open_invites(&ada).await;
        click(
            &ada,
            "[data-testid=invite-item] [data-testid=invite-revoke]",
        )
        .await;
        eventually(
            &ada,
            "no link left",
            "return !document.querySelector('[data-testid=invite-item]');",
        )
        .await;
        click(&ada, "[data-testid=invite-close]").await;
        let other = driver.browser(1280, 800).await;
        other.goto(&app.url("/static/404.html")).await.unwrap();
        js(
            &other,
            &format!(
                "localStorage.setItem('webcall.lang', '{}'); return true;",
                lang.code
            ),
        )
        .await;
        other.goto(&url).await.unwrap();
        let title = eventually(
            &other,
            "the revoked link explained",
            "const t = document.querySelector('[data-testid=guest-problem-title]'); return document.querySelector('[data-testid=guest-problem]')?.hidden === false && t.textContent;",
        )
        .await;
        assert!(
            title.as_str().unwrap().starts_with(lang.bad_link),
            "{title}"
        );
        screenshot(&other, &format!("guests-revoked-{}-1280", lang.code)).await;
        other.close().await.unwrap();
        assert_eq!(tile_of(&ada, &name).await, anna_at_ada, "the guest stays");
        click(&guest, "[data-testid=leave]").await;
        eventually(
            &guest,
            "the guest's left page",
            "return location.pathname === '/join' && document.querySelector('[data-testid=guest-problem]')?.hidden === false;",
        )
        .await;
        guest.close().await.unwrap();
    }
    ada.close().await.unwrap();
}
