// index.html for a run: rendered from manifest.json, self-contained (inline CSS/JS, no network).
#include "cnnvis/io/html_index.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "cnnvis/core/errors.h"
#include "cnnvis/core/text.h"
#include "cnnvis/io/files.h"
#include "cnnvis/io/manifest.h"

namespace cnnvis {

namespace fs = std::filesystem;

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// A relative file path as a URL path: every byte outside the unreserved set and the path-safe "+,=@"
// is percent-encoded ("gradcam++" stays readable), '/' separates segments. Keeps odd input names (spaces, '#', '?', unicode) working as links.
std::string url_path(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~' || c == '/' || c == '+' || c == ',' || c == '=' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string url_decode(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

bool is_picture(const std::string& path) {
  const std::string ext = to_lower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".gif" || ext == ".webp" || ext == ".svg" ||
         ext == ".bmp";
}

bool exists_under(const std::string& dir, const std::string& relative) {
  std::error_code ec;
  return !relative.empty() && fs::is_regular_file(fs::path(dir) / relative, ec);
}

std::string percent(double p) { return p < 0.001 ? fmt::format("{:.2f}%", 100 * p) : fmt::format("{:.1f}%", 100 * p); }

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.4g}", v.get<double>());
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const char* kStyle = R"CSS(
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1f2937;color:#eee;padding:12px 20px}
header h1{margin:0 0 4px;font-size:20px}
header a{color:#9cf}
.run{border-collapse:collapse;margin-top:6px;font-size:12px}
.run td{padding:1px 8px 1px 0;vertical-align:top}
.run td:first-child{color:#aaa}
#controls{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 20px;z-index:2}
#filter{width:280px;padding:4px}
main{padding:12px 20px}
.entry{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0 0 14px;padding:10px 12px}
.entry.error{border-color:#e55;background:#fff6f6}
.entry h2{font-size:15px;margin:0 0 6px;word-break:break-all}
.err{color:#b00;font-weight:bold}
.facts{font-size:12px;color:#555;margin-bottom:4px}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
figure{margin:0;max-width:260px}
figure img{max-width:256px;max-height:256px;display:block;border:1px solid #ccc;background:#eee;cursor:zoom-in}
figcaption{font-size:12px;color:#444;word-break:break-all}
.group{border-left:3px solid #8ab;padding-left:8px}
.group h3{font-size:13px;margin:0 0 4px}
.pred{border-collapse:collapse;font-size:12px;margin-top:6px}
.pred td{padding:1px 6px}
.bar{display:inline-block;height:9px;background:#4a8;vertical-align:middle}
.raw{font-size:12px;margin:6px 0 0}
.raw a{margin-right:8px}
.runimages figure{max-width:none}
.runimages figure img{max-width:100%;max-height:480px}
#viewer{display:none;position:fixed;inset:0;background:rgba(10,10,10,.92);z-index:10;overflow:hidden;cursor:grab}
#viewer.open{display:block}
#viewer img{position:absolute;left:0;top:0;transform-origin:0 0;max-width:none;max-height:none;user-select:none}
#viewer .bar2{position:absolute;left:0;right:0;bottom:0;color:#ddd;background:rgba(0,0,0,.6);padding:6px 12px;font-size:13px}
#viewer button{margin-left:6px}
)CSS";

// Zoom and pan: wheel zooms at the cursor, drag pans, double-click or "fit" fits, "1:1" shows pixels,
// arrows step through the page's pictures, Esc closes. Pixels stay crisp when enlarged. index.html#view=N
// opens the page with picture N in the viewer (a link to share, and how the browser test looks at it).
const char* kScript = R"JS(
(function(){
var viewer=document.getElementById('viewer'),img=viewer.querySelector('img'),cap=document.getElementById('vcap');
var links=[],cur=-1,s=1,x=0,y=0,drag=null;
function apply(){img.style.transform='translate('+x+'px,'+y+'px) scale('+s+')';img.style.imageRendering=s>1.5?'pixelated':'auto';
 document.getElementById('vzoom').textContent=Math.round(s*100)+'%';}
function fit(){var w=img.naturalWidth||1,h=img.naturalHeight||1,W=viewer.clientWidth,H=viewer.clientHeight-34;
 s=Math.min(W/w,H/h);x=(W-w*s)/2;y=(H-h*s)/2;apply();}
function one(){var W=viewer.clientWidth,H=viewer.clientHeight;x=(W-img.naturalWidth)/2;y=(H-img.naturalHeight)/2;s=1;apply();}
function show(i){links=Array.prototype.slice.call(document.querySelectorAll('a.zoom')).filter(function(a){return a.offsetParent!==null;});
 if(!links.length)return;cur=(i+links.length)%links.length;var a=links[cur];cap.textContent=a.getAttribute('data-caption')||a.getAttribute('href');
 img.onload=fit;img.src=a.getAttribute('href');viewer.classList.add('open');}
document.addEventListener('click',function(e){var a=e.target.closest('a.zoom');if(!a)return;e.preventDefault();
 var all=Array.prototype.slice.call(document.querySelectorAll('a.zoom')).filter(function(b){return b.offsetParent!==null;});show(all.indexOf(a));});
viewer.addEventListener('wheel',function(e){e.preventDefault();var f=e.deltaY<0?1.2:1/1.2,r=viewer.getBoundingClientRect(),
 px=e.clientX-r.left,py=e.clientY-r.top;x=px-(px-x)*f;y=py-(py-y)*f;s*=f;apply();},{passive:false});
viewer.addEventListener('mousedown',function(e){if(e.target.tagName==='BUTTON')return;drag={x:e.clientX-x,y:e.clientY-y};viewer.style.cursor='grabbing';e.preventDefault();});
window.addEventListener('mousemove',function(e){if(drag){x=e.clientX-drag.x;y=e.clientY-drag.y;apply();}});
window.addEventListener('mouseup',function(){drag=null;viewer.style.cursor='grab';});
viewer.addEventListener('dblclick',fit);
document.getElementById('vfit').onclick=fit;document.getElementById('vone').onclick=one;
document.getElementById('vclose').onclick=function(){viewer.classList.remove('open');};
document.addEventListener('keydown',function(e){if(!viewer.classList.contains('open'))return;
 if(e.key==='Escape')viewer.classList.remove('open');else if(e.key==='ArrowRight')show(cur+1);else if(e.key==='ArrowLeft')show(cur-1);
 else if(e.key==='+'||e.key==='='){s*=1.25;apply();}else if(e.key==='-'){s/=1.25;apply();}else if(e.key==='0')one();});
var q=document.getElementById('filter'),only=document.getElementById('onlyerrors'),count=document.getElementById('shown');
function filter(){var t=q.value.toLowerCase(),n=0,es=document.querySelectorAll('.entry');
 for(var i=0;i<es.length;i++){var e=es[i],ok=(!t||e.getAttribute('data-name').indexOf(t)>=0)&&(!only.checked||e.classList.contains('error'));
  e.style.display=ok?'':'none';if(ok)n++;}count.textContent=n+' shown';}
q.addEventListener('input',filter);only.addEventListener('change',filter);filter();
var h=location.hash.match(/^#view=(\d+)/);if(h)show(+h[1]);
})();
)JS";

struct Figure {
  std::string file;
  std::string caption;
};

// For gradcam-like entries: output-name prefix (the map's tag) -> "method · layer · target label p%".
std::map<std::string, std::string> map_captions(const nlohmann::json& entry) {
  std::map<std::string, std::string> out;
  if (!entry.contains("maps") || !entry["maps"].is_array()) return out;
  for (const auto& m : entry["maps"]) {
    if (!m.is_object() || !m.contains("tag") || !m["tag"].is_string()) continue;
    std::string text = m.value("method", std::string());
    if (m.contains("layer") && m["layer"].is_string()) text += " · " + m["layer"].get<std::string>();
    if (m.contains("target") && m["target"].is_object()) {
      const auto& t = m["target"];
      text += " · " + t.value("label", std::string());
      if (t.contains("probability") && t["probability"].is_number()) text += " " + percent(t["probability"].get<double>());
    }
    out[m["tag"].get<std::string>()] = text;
  }
  return out;
}

// The group an output belongs to: its name without the last part ("gradcam.c5.overlay" -> "gradcam.c5").
std::string group_of(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

std::string figure_html(const Figure& f) {
  const std::string href = url_path(f.file);
  return "<figure><a class=\"zoom\" href=\"" + href + "\" data-caption=\"" + html_escape(f.caption) + " — " +
         html_escape(f.file) + "\"><img loading=\"lazy\" src=\"" + href + "\" alt=\"" + html_escape(f.caption) +
         "\"></a><figcaption>" + html_escape(f.caption) + "</figcaption></figure>";
}

std::string predictions_html(const nlohmann::json& predictions) {
  if (!predictions.is_array() || predictions.empty()) return "";
  std::string out = "<table class=\"pred\"><tr><th>#</th><th>class</th><th>probability</th><th></th></tr>";
  int rank = 1;
  for (const auto& p : predictions) {
    if (!p.is_object()) continue;
    const double prob = p.contains("probability") && p["probability"].is_number() ? p["probability"].get<double>() : 0.0;
    out += fmt::format("<tr><td>{}</td><td>{} <small>({})</small></td><td>{}</td><td><span class=\"bar\" style=\"width:{}px\"></span></td></tr>",
                       rank++, html_escape(p.value("label", std::string())), p.value("index", -1), percent(prob),
                       static_cast<int>(120 * std::clamp(prob, 0.0, 1.0)));
  }
  return out + "</table>";
}

std::string entry_html(const nlohmann::json& entry, const std::string& out_dir) {
  const std::string input = entry.value("input", std::string());
  const std::string status = entry.value("status", std::string("ok"));
  std::string html = "<section class=\"entry" + std::string(status == "ok" ? "" : " error") + "\" data-name=\"" +
                     html_escape(to_lower(input)) + "\">";
  html += "<h2>" + html_escape(input);
  if (entry.contains("target") && entry["target"].is_object()) {
    const auto& t = entry["target"];
    html += " <small>target: " + html_escape(t.value("label", std::string()));
    if (t.contains("probability") && t["probability"].is_number()) html += " " + percent(t["probability"].get<double>());
    html += "</small>";
  }
  html += "</h2>";
  // Other short facts the command recorded about this input (true class, mode, method...).
  static const std::set<std::string> kShown = {"input", "status", "error", "outputs", "predictions", "timings_ms", "key",
                                               "stem", "input_file", "target", "maps", "layer"};
  std::string facts;
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (kShown.count(it.key()) || !(it.value().is_string() || it.value().is_number() || it.value().is_boolean())) continue;
    facts += (facts.empty() ? "" : " · ") + html_escape(it.key()) + ": " + html_escape(scalar_text(it.value()));
  }
  if (!facts.empty()) html += "<div class=\"facts\">" + facts + "</div>";
  if (status != "ok") {
    html += "<p class=\"err\">" + html_escape(status) + ": " +
            html_escape(entry.contains("error") && entry["error"].is_string() ? entry["error"].get<std::string>() : "") + "</p>";
  }
  const auto captions = map_captions(entry);
  std::vector<Figure> loose;
  std::vector<std::pair<std::string, std::vector<Figure>>> groups;  // in manifest order
  std::vector<std::pair<std::string, std::string>> raw;
  if (entry.contains("outputs") && entry["outputs"].is_object()) {
    for (auto it = entry["outputs"].begin(); it != entry["outputs"].end(); ++it) {
      if (!it.value().is_string()) continue;
      const std::string file = it.value().get<std::string>();
      if (!exists_under(out_dir, file)) continue;
      if (!is_picture(file)) {
        raw.emplace_back(it.key(), file);
        continue;
      }
      const std::string group = group_of(it.key());
      if (group.empty()) {
        loose.push_back({file, it.key()});
        continue;
      }
      auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& p) { return p.first == group; });
      if (g == groups.end()) {
        groups.emplace_back(group, std::vector<Figure>{});
        g = groups.end() - 1;
      }
      g->second.push_back({file, it.key().substr(group.size() + 1)});
    }
  }
  // The input first, then ungrouped pictures, then one block per method/layer/target.
  std::stable_partition(loose.begin(), loose.end(), [](const Figure& f) { return f.caption == "input"; });
  if (loose.empty() || loose.front().caption != "input") {
    // No thumbnail in the run: show the original when it is reachable from the page.
    std::error_code ec;
    const fs::path relative = fs::relative(fs::absolute(input, ec), fs::absolute(out_dir, ec), ec);
    if (!ec && !relative.empty() && is_picture(input) && exists_under(out_dir, relative.string())) {
      loose.insert(loose.begin(), Figure{relative.string(), "input"});
    }
  }
  html += "<div class=\"row\">";
  for (const auto& f : loose) html += figure_html(f);
  for (const auto& [group, figures] : groups) {
    auto caption = captions.find(group);
    html += "<div class=\"group\"><h3>" + html_escape(group) +
            (caption != captions.end() ? " <small>" + html_escape(caption->second) + "</small>" : "") + "</h3><div class=\"row\">";
    for (const auto& f : figures) html += figure_html(f);
    html += "</div></div>";
  }
  html += "</div>";
  html += predictions_html(entry.value("predictions", nlohmann::json::array()));
  if (!raw.empty()) {
    html += "<p class=\"raw\">raw: ";
    for (const auto& [name, file] : raw) html += "<a href=\"" + url_path(file) + "\">" + html_escape(name) + "</a>";
    html += "</p>";
  }
  return html + "</section>\n";
}

// Run-level pictures: header strings naming an existing picture, also one level into objects.
std::vector<Figure> run_pictures(const nlohmann::json& manifest, const std::string& out_dir) {
  std::vector<Figure> out;
  auto consider = [&](const std::string& name, const nlohmann::json& v) {
    if (v.is_string() && is_picture(v.get<std::string>()) && exists_under(out_dir, v.get<std::string>())) {
      out.push_back({v.get<std::string>(), name});
    }
  };
  for (auto it = manifest.begin(); it != manifest.end(); ++it) {
    if (it.key() == "inputs") continue;
    consider(it.key(), it.value());
    if (it.value().is_object()) {
      for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) consider(it.key() + "." + jt.key(), jt.value());
    }
  }
  return out;
}

}  // namespace

std::string render_index_html(const nlohmann::json& manifest, const std::string& out_dir, const HtmlIndexOptions& options) {
  const std::string command = manifest.value("command", std::string("run"));
  const nlohmann::json inputs = manifest.contains("inputs") && manifest["inputs"].is_array() ? manifest["inputs"] : nlohmann::json::array();
  std::size_t errors = 0;
  for (const auto& e : inputs) errors += e.is_object() && e.value("status", std::string("ok")) != "ok";
  std::string html = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                     "<meta name=\"generator\" content=\"cnnvis\"><title>cnnvis " + html_escape(command) + " — " +
                     html_escape(fs::path(out_dir).filename().string()) + "</title><style>" + kStyle + "</style></head><body>\n";
  html += "<header><h1>cnnvis " + html_escape(command);
  if (manifest.contains("model") && manifest["model"].is_string()) html += " · " + html_escape(manifest["model"].get<std::string>());
  html += "</h1><div>" + std::to_string(inputs.size()) + " input(s), " + std::to_string(errors) + " failed · " +
          "<a href=\"manifest.json\">manifest.json</a></div><table class=\"run\">";
  for (const char* key : {"model", "device", "threads", "version", "libtorch", "weights", "weights_sha256", "started", "finished",
                          "shard", "accuracy"}) {
    if (manifest.contains(key) && !manifest[key].is_null() && !manifest[key].is_object()) {
      html += "<tr><td>" + std::string(key) + "</td><td>" + html_escape(scalar_text(manifest[key])) + "</td></tr>";
    }
  }
  for (const char* key : {"options", "pointing_game_hit_rate"}) {
    if (manifest.contains(key) && manifest[key].is_object()) {
      for (auto it = manifest[key].begin(); it != manifest[key].end(); ++it) {
        html += "<tr><td>" + html_escape(std::string(key) + "." + it.key()) + "</td><td>" + html_escape(scalar_text(it.value())) +
                "</td></tr>";
      }
    }
  }
  html += "</table></header>\n";
  const std::vector<Figure> pictures = run_pictures(manifest, out_dir);
  if (!pictures.empty()) {
    html += "<main class=\"runimages\"><div class=\"row\">";
    for (const auto& f : pictures) html += figure_html(f);
    html += "</div></main>\n";
  }
  html += "<div id=\"controls\">filter: <input id=\"filter\" type=\"search\" placeholder=\"part of an input path\"> "
          "<label><input id=\"onlyerrors\" type=\"checkbox\"> failed only</label> · <span id=\"shown\"></span> · "
          "click a picture to zoom (wheel, drag, arrows, Esc)</div>\n<main>\n";
  std::size_t shown = 0;
  for (const auto& e : inputs) {
    if (!e.is_object()) continue;
    if (shown == options.max_entries) {
      html += fmt::format("<p>{} more input(s) are not shown here; see <a href=\"manifest.json\">manifest.json</a>.</p>\n",
                          inputs.size() - shown);
      break;
    }
    html += entry_html(e, out_dir);
    ++shown;
  }
  html += "</main>\n<div id=\"viewer\"><img alt=\"\"><div class=\"bar2\"><span id=\"vcap\"></span> · <span id=\"vzoom\"></span>"
          "<button id=\"vfit\">fit</button><button id=\"vone\">1:1</button><button id=\"vclose\">close (Esc)</button></div></div>\n";
  html += std::string("<script>") + kScript + "</script>\n</body></html>\n";
  return html;
}

void write_index_html(const std::string& out_dir, const HtmlIndexOptions& options) {
  const nlohmann::json manifest = read_manifest((fs::path(out_dir) / "manifest.json").string());
  write_text_atomically((fs::path(out_dir) / "index.html").string(), render_index_html(manifest, out_dir, options));
}

std::vector<std::string> html_local_references(const std::string& html) {
  static const std::regex attribute(R"re(\b(?:src|href)="([^"]*)")re");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), attribute); it != std::sregex_iterator(); ++it) {
    const std::string value = (*it)[1].str();
    if (value.empty() || value[0] == '#' || value.find("://") != std::string::npos || value.rfind("data:", 0) == 0) continue;
    out.push_back(url_decode(value));
  }
  return out;
}

}  // namespace cnnvis
