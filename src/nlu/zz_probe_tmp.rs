#[test]
fn probe_real_flows() {
    use crate::nlu::*;
    let bot = match crate::flow::compile::compile_dir(std::path::Path::new("flows")) {
        Ok(b) => b,
        Err(_) => { println!("compile failed"); return; }
    };
    let nlu = rules::RulesNlu::new(&bot.clinic, &bot.intents);
    let now = jiff::civil::date(2026, 11, 22).at(10, 0, 0, 0).in_tz("America/Argentina/Buenos_Aires").unwrap();
    let msgs = std::fs::read_to_string("/tmp/nlu-scratch/msgs2.txt").unwrap();
    for line in msgs.lines() {
        let (ask, text) = line.split_once('|').unwrap_or(("", line));
        let ctx = NluContext { asking: EntityKind::parse(ask), ..Default::default() };
        let u = nlu.understand(text, &ctx, &now);
        let ents: Vec<String> = u.entities.iter().map(|e| format!("{}={}", e.kind.as_str(), e.value)).collect();
        println!("{:50} | {:?} {:.2} sure={} {:?} | {}", text, u.intent_name(), u.intent.as_ref().map_or(0.0, |i| i.confidence), u.sure, u.lang, ents.join(", "));
    }
}
