//! Account emails: rendered from templates when their event arrives, queued once per event,
//! written to the development mailbox; the link in the mail works.

use serde_json::json;
use vectis_engine::consumer::EventRuntime;
use vectis_engine::events::envelope::Envelope;

use crate::streaming::{eventually, outbox_rows};
use crate::support::{TestApp, buyer, fresh_config};

#[tokio::test]
async fn account_emails_are_rendered_queued_once_and_written_to_the_mailbox() {
    let mailbox = std::env::temp_dir().join(format!("vectis-mailbox-{}", uuid::Uuid::now_v7()));
    let mut config = fresh_config().await;
    config.kafka.relay_poll_ms = 50;
    config.consumer.worker_poll_ms = 50;
    config.mail.mailbox_dir = mailbox.display().to_string();
    config.mail.link_base_url = "https://shop.example.com/".into();
    let t = TestApp::with_config(config).await;
    let runtime = EventRuntime::for_engine(&t.app).await.unwrap();

    t.ok(
        Some(&t.a.storefront),
        "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }",
        json!({ "input": { "email": "mail@example.com", "password": "analytical-1", "firstName": "<Ada>", "lastName": "L" } }),
    )
    .await;
    t.ok(
        Some(&t.a.storefront),
        "mutation { requestPasswordReset(email: \"mail@example.com\") }",
        json!({}),
    )
    .await;
    buyer(&t).await; // an invitation

    let files = eventually(30, "three mails in the mailbox", || async {
        let files: Vec<_> = std::fs::read_dir(&mailbox)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
        (files.len() == 3).then_some(files)
    })
    .await;
    assert!(
        files
            .iter()
            .any(|f| f.contains("Subject: Confirm your email address"))
    );
    assert!(
        files
            .iter()
            .any(|f| f.contains("Subject: Reset your password"))
    );
    assert!(
        files
            .iter()
            .any(|f| f.contains("Subject: You are invited to Acme"))
    );
    assert!(
        files
            .iter()
            .all(|f| f.contains("Message-ID: <") && f.contains("multipart/alternative"))
    );

    let queued = eventually(10, "three mails recorded as sent", || async {
        let tx = t
            .app
            .db()
            .read(vectis_engine::db::Scope::System)
            .await
            .unwrap();
        use sea_orm::{EntityTrait, QueryOrder};
        let queued = vectis_engine::notifications::entity::Entity::find()
            .order_by_asc(vectis_engine::notifications::entity::Column::Id)
            .all(&tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (queued.len() == 3
            && queued
                .iter()
                .all(|m| m.status == "sent" && m.sent_at.is_some()))
        .then_some(queued)
    })
    .await;
    let verify = queued
        .iter()
        .find(|m| m.template == "verify_email")
        .unwrap();
    assert_eq!(verify.to_address, "mail@example.com");
    // The one-time links live only in the emails: no event carries a token, the kept
    // secrets are gone once queued, and a sent email's bodies are dropped.
    assert!(
        queued
            .iter()
            .all(|m| m.text_body.is_empty() && m.html_body.is_empty())
    );
    assert_eq!(t.scalar("SELECT COUNT(*) FROM mail_tokens").await, 0);
    for row in outbox_rows(&t).await {
        assert!(
            row.data.get("token").is_none(),
            "{}: {}",
            row.event_type,
            row.data
        );
    }
    // Quoted-printable soft line breaks and `=` undone.
    let mail = files
        .iter()
        .find(|f| f.contains("Subject: Confirm your email address"))
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(mail.contains("Hello <Ada>,"), "text is not escaped");
    assert!(mail.contains("Hello &lt;Ada&gt;,"), "HTML is escaped");
    let token = mail
        .split("https://shop.example.com/verify-email?token=")
        .nth(1)
        .unwrap()
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned();
    // The link in the mail verifies the address.
    let verified = t
        .ok(
            None,
            "mutation($t: String!) { verifyCustomerEmail(token: $t) { emailVerified } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(verified["verifyCustomerEmail"]["emailVerified"], true);

    // A redelivered event queues nothing again.
    let pipeline = vectis_engine::consumer::pipeline(&t.app).unwrap();
    for row in outbox_rows(&t).await {
        if row.event_type.ends_with("_requested") {
            pipeline.process(&Envelope::from_row(&row)).await.unwrap();
        }
    }
    assert_eq!(t.scalar("SELECT COUNT(*) FROM mail_queue").await, 3);
    runtime.shutdown().await;
    std::fs::remove_dir_all(&mailbox).ok();
}

#[test]
fn templates_render_every_account_email() {
    let n = vectis_engine::notifications::Notifications::new(&Default::default()).unwrap();
    let event = |ty: &str, data: serde_json::Value| Envelope {
        specversion: "1.0".into(),
        id: uuid::Uuid::now_v7(),
        source: "/vectis/tenants/x".into(),
        event_type: ty.into(),
        subject: "s".into(),
        time: chrono::Utc::now(),
        datacontenttype: "application/json".into(),
        dataschema: "x".into(),
        tenantid: uuid::Uuid::now_v7(),
        aggregatetype: "customer".into(),
        sequence: 1,
        position: 1,
        actorid: None,
        actingstaffid: None,
        data,
    };
    let invite = n
        .render(
            &event(
                "vectis.company.user_invited",
                json!({ "email": "b@x.test", "companyName": "Acme & Co", "roles": ["buyer", "approver"], "expiresAt": "2026-12-01" }),
            ),
            "tok",
        )
        .unwrap()
        .unwrap();
    assert_eq!(invite.subject, "You are invited to Acme & Co");
    assert!(invite.text.contains("as buyer, approver"));
    assert!(
        invite
            .text
            .contains("http://localhost:3000/accept-invitation?token=tok")
    );
    assert!(invite.html.contains("Acme &amp; Co"));
    assert!(
        n.render(&event("vectis.product.created", json!({})), "tok")
            .unwrap()
            .is_none()
    );
    assert!(
        n.render(
            &event(
                "vectis.account.password_reset_requested",
                json!({ "email": "a@x.test" })
            ),
            ""
        )
        .is_err(),
        "no token"
    );
}

/// A minimal SMTP server on a local port; returns the port and the messages it received.
async fn smtp_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(message) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(data.take().unwrap_or_default());
                            write.write_all(b"250 queued\r\n").await.ok();
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.ok();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test]
async fn with_smtp_configured_account_emails_are_sent_to_the_server() {
    let (port, received) = smtp_server().await;
    let mut config = fresh_config().await;
    config.kafka.relay_poll_ms = 50;
    config.consumer.worker_poll_ms = 50;
    config.mail.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    config.mail.from = "Acme Shop <shop@acme.test>".into();
    let t = TestApp::with_config(config).await;
    let runtime = EventRuntime::for_engine(&t.app).await.unwrap();
    t.ok(
        Some(&t.a.storefront),
        "mutation($input: RegisterCustomerInput!) { registerCustomer(input: $input) { id } }",
        json!({ "input": { "email": "smtp@example.com", "password": "analytical-1", "firstName": "S", "lastName": "M" } }),
    )
    .await;
    let message = eventually(30, "a message at the SMTP server", || async {
        received.lock().unwrap().first().cloned()
    })
    .await;
    assert!(
        message.contains("Subject: Confirm your email address"),
        "{message}"
    );
    assert!(message.contains("To: smtp@example.com"), "{message}");
    assert!(
        message.contains("From: \"Acme Shop\" <shop@acme.test>")
            || message.contains("From: Acme Shop <shop@acme.test>"),
        "{message}"
    );
    eventually(10, "the queue to record it as sent", || async {
        (t.scalar("SELECT COUNT(*) FROM mail_queue WHERE status = 'sent'")
            .await
            == 1)
            .then_some(())
    })
    .await;
    runtime.shutdown().await;
}
