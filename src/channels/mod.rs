//! Channel adapters: how patients reach the service. Each adapter turns a channel's request
//! into a `TurnRequest`, calls `Service::handle`, and renders the replies for the channel.
//! The integrator JSON API lives in `api/`.

pub mod twilio;
