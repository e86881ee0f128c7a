//! The permission relay at work: prompts sent to owners, verdicts taken
//! from owners only, every copy edited when the prompt ends, expiry,
//! reminders, and calls a rule allows (see [`crate::relay`] for what is
//! decided and kept).
//!
//! A verdict goes to Claude Code before the copies are edited: the session
//! is waiting, the edits only tell people. Nothing here sends a verdict on
//! expiry: the terminal's dialog stays open, so an unanswered prompt is left
//! to it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use super::Router;
use crate::access::Role;
use crate::bindings::types::{
    Button, ButtonPress, Chat, EditRequest, InboundMessage, OutboundMessage, Sender,
};
use crate::manifest::RelayConfig;
use crate::relay::notice::{self, Gather};
use crate::relay::render::{self, Ending, Markup};
use crate::relay::store::{Copy, Decision, Prompt, State};
use crate::relay::verdict::{self, Action, Behavior};
use crate::relay::{PermissionRequest, RelayStore, policy};

/// How often deadlines, reminders and lockdown are looked at.
pub const TICK: Duration = Duration::from_secs(1);
/// Settled prompts are forgotten after this long (seconds).
const KEEP_SECS: i64 = 7 * 24 * 3600;

/// What an owner who is not one is told.
pub const OWNERS_ONLY: &str = "Only an owner can answer this permission prompt.";
/// What a late answer is told.
const ALREADY: &str = "This permission prompt was already answered or closed. If the terminal \
                       still asks, answer there.";

/// The relay's parts a router holds.
pub struct Relay {
    store: RelayStore,
    config: RelayConfig,
    pid: i64,
    verdicts: mpsc::UnboundedSender<String>,
    gather: Mutex<Gather>,
}

impl Relay {
    /// A relay keeping its state in `store`, sending each verdict's
    /// JSON-RPC line to `verdicts` (the MCP writer forwards them).
    pub fn new(
        store: RelayStore,
        config: RelayConfig,
        verdicts: mpsc::UnboundedSender<String>,
    ) -> Self {
        Self {
            store,
            config,
            pid: i64::from(std::process::id()),
            verdicts,
            gather: Mutex::new(Gather::default()),
        }
    }

    fn send_verdict(&self, request_id: &str, behavior: Behavior) {
        if self
            .verdicts
            .send(verdict::notification(request_id, behavior))
            .is_err()
        {
            tracing::warn!(request_id, "the session is gone; the verdict was not sent");
        }
    }
}

/// Whether process `pid` still runs.
fn alive(pid: i64) -> bool {
    u32::try_from(pid)
        .ok()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

impl Router {
    /// One relay row in the audit trail.
    fn relay_record(
        &self,
        prompt_id: &str,
        tool: &str,
        summary: String,
        detail: serde_json::Value,
    ) {
        let mut detail = detail;
        detail["request_id"] = prompt_id.into();
        detail["tool"] = tool.into();
        self.record(&[crate::audit::Entry::new(crate::audit::Kind::Relay, summary).detail(detail)]);
    }

    /// Whether to declare `claude/channel/permission`: the relay is on and
    /// some active adapter has an owner to answer.
    pub fn relay_offered(&self) -> bool {
        self.relay.config.enabled
            && self
                .adapters
                .keys()
                .any(|a| match self.access.has_owner(a) {
                    Ok(yes) => yes,
                    Err(e) => {
                        tracing::warn!(adapter = a, "cannot look for owners: {e}");
                        false
                    }
                })
    }

    /// A `permission_request` from Claude Code: refused if malformed, left
    /// to the terminal during lockdown, allowed by a rule, or sent to every
    /// owner's direct chat.
    pub async fn permission_request(&self, params: Option<&Value>) {
        let mut request = match PermissionRequest::parse(params) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    "relay: a permission request was dropped: {e}; the terminal still asks"
                );
                self.record(&[crate::audit::Entry::new(
                    crate::audit::Kind::Relay,
                    format!("a malformed permission request was dropped: {e}"),
                )
                .detail(serde_json::json!({"event": "malformed", "why": e.to_string()}))]);
                return;
            }
        };
        // Whatever the session's tools were called with, no loaded secret leaves.
        for field in [
            &mut request.tool_name,
            &mut request.description,
            &mut request.input_preview,
        ] {
            if let std::borrow::Cow::Owned(clean) = crate::secrets::loaded::redact(field) {
                *field = clean;
            }
        }
        let (id, tool) = (request.request_id.as_str(), request.tool_name.as_str());
        tracing::info!(request_id = id, tool, "relay: permission request");
        self.record(&[crate::audit::Entry::new(
            crate::audit::Kind::Relay,
            format!(
                "permission request {id} for {}",
                crate::text::one_line(tool, 80)
            ),
        )
        .text(&request.input_preview)
        .detail(serde_json::json!({
            "event": "request",
            "request_id": id,
            "tool": tool,
            "description": crate::text::one_line(&request.description, 300),
        }))]);
        if !self.relay.config.enabled {
            tracing::info!(
                request_id = id,
                "relay: off ([relay] enabled = false); left to the terminal"
            );
            self.relay_record(
                id,
                tool,
                format!("request {id} left to the terminal: the relay is off"),
                serde_json::json!({"event": "left to the terminal", "why": "relay off"}),
            );
            return;
        }
        match self.access.lockdown() {
            Ok(None) => {}
            Ok(Some(_)) => {
                tracing::info!(
                    request_id = id,
                    "relay: airlock is locked down; left to the terminal"
                );
                self.relay_record(
                    id,
                    tool,
                    format!("request {id} left to the terminal: locked down"),
                    serde_json::json!({"event": "left to the terminal", "why": "lockdown"}),
                );
                return;
            }
            Err(e) => {
                tracing::error!(
                    request_id = id,
                    "relay: cannot read lockdown ({e}); left to the terminal"
                );
                return;
            }
        }
        let now = crate::access::now();
        let token = match verdict::new_token() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(
                    request_id = id,
                    "relay: no randomness for a prompt ({e}); left to the terminal"
                );
                return;
            }
        };
        if policy::may_rule(tool, &self.relay.config).is_ok()
            && let Ok(Some(rule)) = self.relay.store.rule(tool, now)
        {
            self.relay.send_verdict(id, Behavior::Allow);
            if let Err(e) = self
                .relay
                .store
                .auto_allowed(&request, &token, self.relay.pid, now)
            {
                tracing::warn!(
                    request_id = id,
                    "relay: cannot record an auto-allowed call: {e}"
                );
            }
            tracing::info!(
                request_id = id,
                tool,
                until = rule.until,
                by = rule.created_by,
                "relay: auto-allowed by a rule"
            );
            self.relay_record(id, tool, format!("request {id} allowed by the rule for {tool} (made by {})", crate::text::one_line(&rule.created_by, 64)), serde_json::json!({"event": "auto-allowed", "rule_until": rule.until, "rule_by": rule.created_by}));
            self.relay
                .gather
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(tool, rule.until);
            self.flush_notices().await;
            return;
        }
        let expires_at = now + self.relay.config.ttl_secs;
        let nudge_at = self.relay.config.nudge_after().map(|n| now + n);
        if let Err(e) =
            self.relay
                .store
                .open(&request, &token, self.relay.pid, now, expires_at, nudge_at)
        {
            tracing::error!(
                request_id = id,
                "relay: cannot store the prompt ({e}); left to the terminal"
            );
            return;
        }
        let Ok(Some(prompt)) = self.relay.store.prompt(&token) else {
            return;
        };
        let rule_tool = policy::may_rule(tool, &self.relay.config)
            .is_ok()
            .then_some(tool);
        let mut shown = 0;
        for (name, active) in &self.adapters {
            let chats = match self.access.owner_chats(name) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(adapter = name, "relay: cannot find the owners: {e}");
                    continue;
                }
            };
            let markup = Markup::for_adapter(name);
            let text = render::prompt(markup, &prompt.view(), rule_tool);
            for chat in chats {
                let message = OutboundMessage {
                    buttons: buttons(&token, rule_tool.is_some()),
                    ..own_message(markup, &chat, text.clone())
                };
                match self.platform(name, active).send(message).await {
                    Ok(sent) => {
                        let Some(message_id) = sent.message_ids.last().cloned() else {
                            continue;
                        };
                        shown += 1;
                        let copy = Copy {
                            adapter: name.clone(),
                            chat_id: chat,
                            message_id,
                        };
                        if let Err(e) = self.relay.store.add_copy(&token, &copy) {
                            tracing::warn!(
                                adapter = name,
                                "relay: cannot remember a prompt's message: {e}"
                            );
                        }
                    }
                    Err(e) => tracing::warn!(
                        adapter = name,
                        request_id = id,
                        "relay: cannot send the prompt to an owner: {e}"
                    ),
                }
            }
        }
        if shown == 0 {
            tracing::warn!(
                request_id = id,
                "relay: no owner could be reached (an owner must have written to the bot once); left to the terminal"
            );
            self.relay_record(
                id,
                tool,
                format!("request {id} left to the terminal: no owner could be reached"),
                serde_json::json!({"event": "left to the terminal", "why": "no owner reachable"}),
            );
            let _ = self.relay.store.close(&token, State::Expired);
        } else {
            tracing::info!(
                request_id = id,
                copies = shown,
                "relay: prompt sent to owners"
            );
            self.relay_record(
                id,
                tool,
                format!("prompt {id} sent to owners ({shown} copies)"),
                serde_json::json!({"event": "prompted", "copies": shown, "expires_at": expires_at}),
            );
        }
    }

    /// A press on one of airlock's own buttons (data with the reserved
    /// prefix), by someone the gate let in with `role`.
    pub(super) async fn relay_press(&self, adapter: &str, press: &ButtonPress, role: Role) {
        let Some((action, token)) = verdict::parse_button(&press.data) else {
            tracing::info!(
                adapter,
                "relay: a press with reserved data that names no prompt; dropped"
            );
            return;
        };
        let prompt = match self.relay.store.prompt(token) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.say(adapter, &press.chat.id, ALREADY.into());
                return;
            }
            Err(e) => {
                tracing::error!(adapter, "relay: cannot read the prompt: {e}");
                return;
            }
        };
        // Only a press on a message that shows this prompt counts.
        let on_copy = self.relay.store.copies(token).is_ok_and(|copies| {
            copies.iter().any(|c| {
                c.adapter == adapter
                    && c.chat_id == press.chat.id
                    && press.message_id.as_ref() == Some(&c.message_id)
            })
        });
        if !on_copy {
            tracing::warn!(adapter, sender = %press.sender.id, "relay: a prompt's button pressed on a message that is not the prompt; dropped");
            return;
        }
        if role != Role::Owner {
            self.refuse(adapter, &press.chat, &press.sender, &prompt, "button");
            return;
        }
        let behavior = match action {
            Action::Details => {
                self.details(adapter, &press.chat.id, press.message_id.clone(), &prompt)
                    .await;
                return;
            }
            Action::Allow | Action::AllowForRule => Behavior::Allow,
            Action::Deny => Behavior::Deny,
        };
        let by = super::inbound::who(&press.sender);
        self.decide(
            adapter,
            &press.chat.id,
            prompt,
            behavior,
            action == Action::AllowForRule,
            &by,
        )
        .await;
    }

    /// `yes abcde` / `no abcde` from someone the gate let in with `role`:
    /// true when the text was taken as an answer (and so is not delivered).
    pub(super) async fn relay_text(
        &self,
        adapter: &str,
        message: &InboundMessage,
        role: Role,
    ) -> bool {
        let Some((behavior, id)) = verdict::parse_text(&message.text) else {
            return false;
        };
        let prompt = match self.relay.store.for_request(&id) {
            Ok(Some(p)) => p,
            // Not a request airlock relayed: ordinary text.
            Ok(None) => return false,
            Err(e) => {
                tracing::error!(adapter, "relay: cannot read the prompt: {e}");
                return false;
            }
        };
        if role != Role::Owner {
            self.refuse(adapter, &message.chat, &message.sender, &prompt, "text");
            return true;
        }
        // Ids are unique only within a session: with two waiting under one
        // id, typing it cannot say which is meant.
        let sessions = self.relay.store.pending_sessions(&id).unwrap_or_default();
        if sessions.len() > 1 {
            tracing::info!(
                adapter,
                "relay: a typed verdict on {id} was refused: sessions {} each wait under that id",
                sessions.join(", ")
            );
            self.record(&[crate::audit::Entry::new(
                crate::audit::Kind::Relay,
                format!("refused a typed verdict on {id}: the id waits in several sessions"),
            )
            .adapter(adapter)
            .chat(&message.chat.id)
            .sender(&message.sender.id, message.sender.handle.as_deref())
            .detail(
                serde_json::json!({"event": "ambiguous", "request_id": id, "sessions": sessions}),
            )]);
            self.say(
                adapter,
                &message.chat.id,
                format!(
                    "Request {id} waits in sessions {}: the same id in each. Answer with the \
                     buttons of the prompt you mean.",
                    sessions.join(" and ")
                ),
            );
            return true;
        }
        let by = super::inbound::who(&message.sender);
        self.decide(adapter, &message.chat.id, prompt, behavior, false, &by)
            .await;
        true
    }

    /// An owner's verdict: the first wins, goes to Claude Code, and every
    /// copy says so.
    async fn decide(
        &self,
        adapter: &str,
        chat_id: &str,
        prompt: Prompt,
        behavior: Behavior,
        with_rule: bool,
        by: &str,
    ) {
        let now = crate::access::now();
        let mine = prompt.pid == self.relay.pid;
        if prompt.state == State::Pending && !mine && !alive(prompt.pid) {
            // The airlock that relayed it is gone: nobody could tell Claude Code.
            self.close_prompt(&prompt, State::Restarted);
            self.say(adapter, chat_id, ALREADY.into());
            return;
        }
        let rule_until = (with_rule
            && behavior == Behavior::Allow
            && policy::may_rule(&prompt.tool_name, &self.relay.config).is_ok())
        .then_some(now + policy::BUTTON_RULE_SECS);
        let decision = Decision {
            behavior,
            by,
            on: adapter,
            at: now,
            rule_until,
        };
        match self.relay.store.decide(&prompt.token, &decision, mine) {
            Ok(true) => {}
            Ok(false) => {
                self.say(adapter, chat_id, ALREADY.into());
                return;
            }
            Err(e) => {
                tracing::error!(adapter, "relay: cannot record the verdict ({e}); not sent");
                return;
            }
        }
        // The rule is stored before the verdict goes, so that a request
        // that follows the verdict at once already finds it.
        let who = format!("{adapter}:{}", crate::text::one_line(by, 64));
        let rule = rule_until.map(|until| {
            self.relay
                .store
                .add_rule(&prompt.tool_name, until, &who, now)
                .map(|()| until)
        });
        if mine {
            self.relay.send_verdict(&prompt.request_id, behavior);
        }
        tracing::info!(
            request_id = prompt.request_id,
            tool = prompt.tool_name,
            behavior = behavior.as_str(),
            by = %crate::text::one_line(by, 64),
            adapter,
            "relay: verdict"
        );
        let verb = if behavior == Behavior::Allow {
            "allowed"
        } else {
            "denied"
        };
        let mut entries = vec![
            crate::audit::Entry::new(
                crate::audit::Kind::Relay,
                format!(
                    "{verb} prompt {} ({}) by {who}",
                    prompt.request_id,
                    crate::text::one_line(&prompt.tool_name, 80)
                ),
            )
            .adapter(adapter)
            .chat(chat_id)
            .detail(serde_json::json!({
                "event": "verdict",
                "request_id": prompt.request_id,
                "tool": prompt.tool_name,
                "behavior": behavior.as_str(),
                "by": who,
            })),
        ];
        match rule {
            Some(Ok(until)) => {
                tracing::info!(tool = prompt.tool_name, until, by = who, "relay: rule made");
                entries.push(
                    crate::audit::Entry::new(
                        crate::audit::Kind::Relay,
                        format!(
                            "rule made by {who}: every {} call allowed for {} minutes",
                            crate::text::one_line(&prompt.tool_name, 80),
                            policy::BUTTON_RULE_SECS / 60
                        ),
                    )
                    .detail(serde_json::json!({
                        "event": "rule",
                        "request_id": prompt.request_id,
                        "tool": prompt.tool_name,
                        "until": until,
                        "by": who,
                    })),
                );
            }
            Some(Err(e)) => tracing::warn!("relay: cannot store the rule: {e}"),
            None => {}
        }
        self.record(&entries);
        self.edit_copies(
            &prompt,
            &Ending::Answered {
                allowed: behavior == Behavior::Allow,
                by,
                platform: adapter,
                at: now,
                rule_until,
            },
        );
    }

    /// Ends a waiting prompt without a verdict (`state`: expired, locked
    /// down, or its airlock stopped): recorded, and every copy says so.
    /// Nothing goes to Claude Code; its terminal still asks.
    fn close_prompt(&self, p: &Prompt, state: State) {
        if !self.relay.store.close(&p.token, state).unwrap_or(false) {
            return;
        }
        let (ending, why) = match state {
            State::Expired => (Ending::Expired, "expired"),
            State::LockedDown => (Ending::LockedDown, "closed by lockdown"),
            _ => (Ending::Restarted, "closed: its airlock stopped"),
        };
        tracing::info!(
            request_id = p.request_id,
            "relay: prompt {why}; left to the terminal"
        );
        self.relay_record(
            &p.request_id,
            &p.tool_name,
            format!("prompt {} {why}; left to the terminal", p.request_id),
            serde_json::json!({"event": "closed", "why": why}),
        );
        self.edit_copies(p, &ending);
    }

    /// Someone who is not an owner answered `prompt` (by `path`: a button
    /// or text): recorded, and told so; nothing goes to Claude Code.
    fn refuse(&self, adapter: &str, chat: &Chat, sender: &Sender, prompt: &Prompt, path: &str) {
        tracing::info!(
            adapter,
            sender = %sender.id,
            request_id = prompt.request_id,
            path,
            "relay: refused a verdict from someone who is not an owner"
        );
        self.record(&[crate::audit::Entry::new(
            crate::audit::Kind::Relay,
            format!(
                "refused an answer ({path}) to prompt {} by {}: not an owner",
                prompt.request_id,
                super::inbound::who(sender)
            ),
        )
        .adapter(adapter)
        .chat(&chat.id)
        .sender(&sender.id, sender.handle.as_deref())
        .detail(serde_json::json!({
            "event": "refused",
            "request_id": prompt.request_id,
            "tool": prompt.tool_name,
            "path": path,
        }))]);
        self.say(adapter, &chat.id, OWNERS_ONLY.into());
    }

    /// The whole preview, as a reply to the prompt in that chat.
    async fn details(
        &self,
        adapter: &str,
        chat_id: &str,
        reply_to: Option<String>,
        prompt: &Prompt,
    ) {
        let Some(active) = self.adapters.get(adapter) else {
            return;
        };
        let markup = Markup::for_adapter(adapter);
        let max = active.description.limits.max_text_len as usize;
        let message = OutboundMessage {
            reply_to,
            ..own_message(
                markup,
                chat_id,
                render::details(markup, &prompt.view(), max),
            )
        };
        if let Err(e) = self.platform(adapter, active).send(message).await {
            tracing::warn!(adapter, "relay: cannot send a prompt's details: {e}");
        }
    }

    /// Edit every copy of `prompt` to say how it ended (which removes its
    /// buttons), in the background.
    fn edit_copies(&self, prompt: &Prompt, ending: &Ending<'_>) {
        let copies = match self.relay.store.copies(&prompt.token) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("relay: cannot find a prompt's messages: {e}");
                return;
            }
        };
        let mut edits = Vec::new();
        for c in copies {
            let Some(active) = self.adapters.get(&c.adapter) else {
                continue;
            };
            let markup = Markup::for_adapter(&c.adapter);
            edits.push((
                c.adapter.clone(),
                self.platform(&c.adapter, active),
                EditRequest {
                    chat_id: c.chat_id,
                    message_id: c.message_id,
                    text: render::ended(markup, &prompt.view(), ending),
                    format: markup.format(),
                },
            ));
        }
        tokio::spawn(async move {
            for (adapter, platform, edit) in edits {
                if let Err(e) = platform.edit(edit).await {
                    tracing::warn!(adapter, "relay: cannot edit a prompt's message: {e}");
                }
            }
        });
    }

    /// Tell owners of the calls rules allowed, if a notice is due.
    async fn flush_notices(&self) {
        let due = self
            .relay
            .gather
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .due(Instant::now());
        let Some(allowed) = due else {
            return;
        };
        for (name, active) in &self.adapters {
            let markup = Markup::for_adapter(name);
            let text = auto_notice(markup, &allowed);
            for chat in self.access.owner_chats(name).unwrap_or_default() {
                let message = own_message(markup, &chat, text.clone());
                if let Err(e) = self.platform(name, active).send(message).await {
                    tracing::warn!(
                        adapter = name,
                        "relay: cannot tell an owner of an auto-allowed call: {e}"
                    );
                }
            }
        }
    }

    /// Deadlines, reminders, lockdown, verdicts decided by another airlock,
    /// and folded notices; called every [`TICK`].
    async fn relay_tick(&self) {
        let (store, pid, now) = (&self.relay.store, self.relay.pid, crate::access::now());
        if matches!(self.access.lockdown(), Ok(Some(_))) {
            for p in store.pending(pid).unwrap_or_default() {
                self.close_prompt(&p, State::LockedDown);
            }
            match store.revoke_all(now) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(rules = n, "relay: lockdown ended every rule");
                    self.record(&[crate::audit::Entry::new(
                        crate::audit::Kind::Relay,
                        format!("lockdown ended {n} rule(s)"),
                    )
                    .detail(
                        serde_json::json!({"event": "rules ended", "why": "lockdown", "rules": n}),
                    )]);
                }
                Err(e) => tracing::warn!("relay: cannot end the rules: {e}"),
            }
        }
        for p in store.expired(pid, now).unwrap_or_default() {
            self.close_prompt(&p, State::Expired);
        }
        for p in store.take_nudges(pid, now).unwrap_or_default() {
            tracing::info!(request_id = p.request_id, "relay: owners reminded");
            self.relay_record(
                &p.request_id,
                &p.tool_name,
                format!("owners reminded of prompt {}", p.request_id),
                serde_json::json!({"event": "reminded"}),
            );
            for c in store.copies(&p.token).unwrap_or_default() {
                let Some(active) = self.adapters.get(&c.adapter) else {
                    continue;
                };
                let markup = Markup::for_adapter(&c.adapter);
                let message = OutboundMessage {
                    reply_to: Some(c.message_id.clone()),
                    ..own_message(markup, &c.chat_id, render::nudge(markup, &p.view()))
                };
                if let Err(e) = self.platform(&c.adapter, active).send(message).await {
                    tracing::warn!(adapter = c.adapter, "relay: cannot remind an owner: {e}");
                }
            }
        }
        for (p, behavior) in store.take_unsent(pid).unwrap_or_default() {
            self.relay.send_verdict(&p.request_id, behavior);
        }
        self.flush_notices().await;
    }

    /// Prompts of an airlock that stopped are closed, and their copies say so.
    fn close_orphans(&self) {
        let store = &self.relay.store;
        for p in store.pending_elsewhere(self.relay.pid).unwrap_or_default() {
            if !alive(p.pid) {
                self.close_prompt(&p, State::Restarted);
            }
        }
        let _ = store.prune(crate::access::now() - KEEP_SECS);
    }
}

/// A message of airlock's own to `chat`, in `markup`.
fn own_message(markup: Markup, chat: &str, text: String) -> OutboundMessage {
    OutboundMessage {
        format: markup.format(),
        ..super::commands::message(chat, text)
    }
}

/// The prompt's buttons.
fn buttons(token: &str, rule: bool) -> Vec<Vec<Button>> {
    let b = |label: &str, action| Button {
        label: label.into(),
        data: verdict::button_data(action, token),
    };
    let mut second = Vec::new();
    if rule {
        second.push(b("Allow 30 min", Action::AllowForRule));
    }
    second.push(b("Details", Action::Details));
    vec![
        vec![b("Allow", Action::Allow), b("Deny", Action::Deny)],
        second,
    ]
}

/// One message about calls rules allowed.
fn auto_notice(m: Markup, allowed: &[notice::Allowed]) -> String {
    let parts: Vec<String> = allowed
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                m.code(&a.tool_name),
                m.own(&format!(
                    "×{} (rule until {})",
                    a.count,
                    render::clock(a.until)
                ))
            )
        })
        .collect();
    format!(
        "{} {}{}",
        m.own("✅ Allowed by a rule, without asking:"),
        parts.join(", "),
        m.own(". `airlock relay revoke TOOL` in the terminal ends a rule.")
    )
}

/// Runs the relay's clock until the router goes.
pub fn spawn(router: Arc<Router>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        router.close_orphans();
        loop {
            tokio::time::sleep(TICK).await;
            router.relay_tick().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_buttons_only_when_a_rule_may_be_made() {
        let labels = |rows: Vec<Vec<Button>>| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|r| r.into_iter().map(|b| b.label).collect())
                .collect()
        };
        assert_eq!(
            labels(buttons("abcdefghijkm", true)),
            [vec!["Allow", "Deny"], vec!["Allow 30 min", "Details"]]
        );
        assert_eq!(
            labels(buttons("abcdefghijkm", false)),
            [vec!["Allow", "Deny"], vec!["Details"]]
        );
        for row in buttons("abcdefghijkm", true) {
            for b in row {
                assert!(verdict::parse_button(&b.data).is_some(), "{}", b.data);
            }
        }
    }

    #[test]
    fn this_process_is_alive_and_a_bogus_pid_is_not() {
        assert!(alive(i64::from(std::process::id())));
        assert!(!alive(-1));
        assert!(!alive(0));
        assert!(!alive(i64::from(i32::MAX)));
    }
}
