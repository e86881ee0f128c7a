//! The rmcp server handler.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomNotification,
    DiscoverResult, ErrorCode, Implementation, JsonObject, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::stdio::Outlet;
use super::tools::{self, DownloadArgs, EditArgs, FetchArgs, ReactArgs, ReplyArgs};
use crate::bindings::types::Features;
use crate::relay::request::METHOD as PERMISSION_REQUEST;
use crate::router::outbound::Reply;
use crate::router::{Router, ToolError};

/// Revisions airlock speaks, newest first. Nothing newer than 2025-11-25:
/// Claude Code does not treat a server on the 2026-07-28 handshake as a channel.
const VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
    ProtocolVersion::V_2024_11_05,
];

/// The MCP handler: tools call into the router; events flow out of the
/// durable queue once the client said `notifications/initialized` (until then
/// they wait there).
pub struct ChannelServer {
    router: Arc<Router>,
    instructions: String,
    outlet: Mutex<Option<Outlet>>,
    /// Whether `claude/channel/permission` was declared, decided once at
    /// the handshake: capabilities do not change within a session.
    relay: OnceLock<bool>,
}

impl ChannelServer {
    /// A server over `router`, writing events through `outlet`, and each
    /// permission verdict line `verdicts` yields.
    pub fn new(
        router: Arc<Router>,
        instructions: String,
        outlet: Outlet,
        verdicts: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    ) -> Self {
        if let Some(mut verdicts) = verdicts {
            let out = outlet.clone();
            tokio::spawn(async move {
                while let Some(line) = verdicts.recv().await {
                    if !out.line(line) {
                        tracing::warn!("the session is gone; a permission verdict was not sent");
                    }
                }
            });
        }
        Self {
            router,
            instructions,
            outlet: Mutex::new(Some(outlet)),
            relay: OnceLock::new(),
        }
    }

    fn relay_declared(&self) -> bool {
        *self.relay.get_or_init(|| {
            let offered = self.router.relay_offered();
            if offered {
                tracing::info!("permission relay: declared; owners answer prompts from chat");
            } else {
                tracing::info!(
                    "permission relay: not declared (it is off, or no running adapter has an \
                     owner); prompts stay in the terminal"
                );
            }
            offered
        })
    }

    async fn call(&self, request: CallToolRequestParams) -> Result<String, ToolError> {
        let args = request.arguments;
        match request.name.as_ref() {
            "reply" => {
                let a: ReplyArgs = tools::parse("reply", args)?;
                tools::check_text(&a.text)?;
                let format = tools::format(a.format.as_deref())?;
                self.router
                    .reply(Reply {
                        chat_id: a.chat_id,
                        text: a.text,
                        reply_to: a.reply_to,
                        files: a.files,
                        format,
                        buttons: tools::buttons(a.buttons),
                    })
                    .await
            }
            "download_attachment" if self.router.any_supports(Features::DOWNLOAD) => {
                let a: DownloadArgs = tools::parse("download_attachment", args)?;
                self.router.download(&a.chat_id, &a.attachment_id).await
            }
            "fetch_messages" if self.router.any_supports(Features::HISTORY) => {
                let a: FetchArgs = tools::parse("fetch_messages", args)?;
                self.router.history(&a.chat_id, a.limit, a.before).await
            }
            "edit_message" => {
                let a: EditArgs = tools::parse("edit_message", args)?;
                tools::check_text(&a.text)?;
                let format = tools::format(a.format.as_deref())?;
                self.router
                    .edit(&a.chat_id, &a.message_id, a.text, format)
                    .await
            }
            "react" if self.router.any_supports(Features::REACT) => {
                let a: ReactArgs = tools::parse("react", args)?;
                self.router.react(&a.chat_id, &a.message_id, &a.emoji).await
            }
            other => Err(ToolError::Arguments(format!(
                "unknown tool {other:?}; the tools are those in tools/list"
            ))),
        }
    }
}

impl ServerHandler for ChannelServer {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        let mut experimental = BTreeMap::from([("claude/channel".to_string(), JsonObject::new())]);
        // Declared only when an owner can answer: Claude Code then sends
        // prompts here as well as to the terminal.
        if self.relay_declared() {
            experimental.insert("claude/channel/permission".to_string(), JsonObject::new());
        }
        capabilities.experimental = Some(experimental);
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.instructions.clone())
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(VERSIONS)
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, McpError> {
        Err(McpError::new(
            ErrorCode::METHOD_NOT_FOUND,
            "server/discover is not supported; use initialize",
            None,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools::list(
            tools::Offered {
                react: self.router.any_supports(Features::REACT),
                download: self.router.any_supports(Features::DOWNLOAD),
                buttons: self.router.any_supports(Features::BUTTONS),
                history: self.router.any_supports(Features::HISTORY),
            },
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        let args = request.arguments.clone();
        // No loaded secret goes back to the session, even one it passed in an argument.
        let redact = |text: String| crate::secrets::loaded::redact(&text).into_owned();
        let outcome = self.call(request).await.map_err(|e| e.to_string());
        if let Err(e) = &outcome {
            tracing::info!(tool = %name, "tool error: {e}");
        }
        // Written beside the answer, not before it: the session waits for
        // the answer, the record only has to follow it (and shutdown waits
        // for it).
        let recorded = outcome.clone();
        self.router.record_beside(move || {
            vec![super::tool_record::tool_call(
                &name,
                args.as_ref(),
                &recorded,
            )]
        });
        let result = match outcome {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(redact(text))]),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(redact(e))]),
        };
        Ok(result.into())
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleServer>,
    ) {
        if notification.method != PERMISSION_REQUEST {
            tracing::debug!(
                method = %crate::text::one_line(&notification.method, 80),
                "ignored a notification airlock does not know"
            );
            return;
        }
        if !self.relay_declared() {
            tracing::warn!(
                "relay: a permission request came, but the relay was not declared; dropped \
                 (the terminal still asks)"
            );
            return;
        }
        // In its own task: sending the prompt waits on platforms, and the
        // session's other messages must not.
        let router = self.router.clone();
        tokio::spawn(async move {
            router
                .permission_request(notification.params.as_ref())
                .await;
        });
    }

    async fn on_initialized(&self, _context: NotificationContext<RoleServer>) {
        let Some(outlet) = self.outlet.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        go_live(&self.router, outlet);
    }
}

/// Hands waiting events, then every new one, to the writer.
fn go_live(router: &Router, outlet: Outlet) {
    let session = router.session().clone();
    session.set_connected(true);
    let sink_session = session.clone();
    let sink: crate::queue::Sink = Box::new(move |batch| {
        let ok = outlet.events(batch);
        if !ok {
            tracing::warn!(
                "cannot deliver channel events, the client is gone; they wait for the next session"
            );
            sink_session.set_connected(false);
        }
        ok
    });
    if let Err(e) = router.queue().go_live(sink) {
        tracing::error!("cannot read the event queue: {e}; events wait until airlock restarts");
        session.set_connected(false);
    }
}
