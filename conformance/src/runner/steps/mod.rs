//! Step kinds; `run_step` dispatches one step of a case.

pub mod access_log;
pub mod apply;
pub mod custom;
pub mod custom_procedures;
pub mod custom_recognise;
pub mod grpc;
pub mod misc;
pub mod requests;
pub mod status_steps;
pub mod tls_tcp;
pub mod weights;
pub mod websocket;

use super::case::{Step, StepEntry};
use super::context::CaseCtx;

pub async fn run_step(ctx: &mut CaseCtx, steps: &[StepEntry], index: usize) -> Result<(), String> {
    let limit = ctx.shared.limits.status;
    match &steps[index].kind {
        Step::Accepted(s) => ctx.poll(limit, |v| status_steps::check_accepted(v, s)).await.map(|_| ()),
        Step::Conditions(s) => ctx.poll(limit, |v| status_steps::check_conditions(v, s)).await.map(|_| ()),
        Step::NoAcceptedParents(s) => status_steps::no_accepted_parents(ctx, s).await,
        Step::AttachedRoutes(s) => ctx.poll(limit, |v| status_steps::check_attached_routes(v, s)).await.map(|_| ()),
        Step::ListenersStatus(s) => ctx.poll(limit, |v| status_steps::check_listeners_status(v, s)).await.map(|_| ()),
        Step::RouteParents(s) => ctx.poll(limit, |v| status_steps::check_route_parents(v, s)).await.map(|_| ()),
        Step::Requests(s) => requests::run(ctx, s).await,
        Step::Weights(s) => weights::run(ctx, s).await,
        Step::Apply(s) => apply::apply(ctx, s).await,
        Step::Delete(s) => apply::delete(ctx, s).await,
        Step::Tls(s) => tls_tcp::tls(ctx, s).await,
        Step::Tcp(s) => tls_tcp::tcp(ctx, s).await,
        Step::Websocket(s) => websocket::run(ctx, s).await,
        Step::Load(s) => misc::load(ctx, s).await,
        Step::Sticky(s) => misc::sticky(ctx, s).await,
        Step::BackendControl(s) => misc::backend_control(ctx, s).await,
        Step::Wait(s) => misc::wait(s).await,
        Step::Custom(text) => custom::run(ctx, text, steps, index).await,
        Step::AccessLog(spec) => {
            let since = if index == 0 { 0 } else { ctx.step_log_offsets.get(index - 1).copied().unwrap_or(0) };
            access_log::run(ctx, spec, since).await
        }
        Step::Grpc(spec) => grpc::run(ctx, spec).await,
        Step::External(_) => {
            Err(format!("step kind {} is not implemented by the runner", steps[index].kind.kind_name()))
        }
    }
}
