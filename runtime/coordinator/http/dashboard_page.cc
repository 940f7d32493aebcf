// The dashboard's page: static HTML + JavaScript, no data in it. Everything it shows comes from
// the JSON views (dashboard.h), polled every second with the token from the URL fragment.
#include "runtime/coordinator/http/dashboard.h"

namespace dtrain::http {

const std::string& DashboardHtml() {
  static const std::string page = R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dtrain</title>
<style>
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:20px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 12px} h2{font-size:15px;margin:18px 0 8px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border-bottom:1px solid #ddd;padding:5px 9px;text-align:left;vertical-align:middle}
th{background:#f0f0f0}
.bar{width:140px;height:12px;background:#eee;border-radius:3px;overflow:hidden;display:inline-block;vertical-align:middle}
.bar>div{height:100%;background:#4E79A7}
.state-running{color:#4E79A7;font-weight:bold}.state-failed{color:#E15759;font-weight:bold}
.state-succeeded{color:#59A14F}.state-pending{color:#B07AA1}.state-cancelled{color:#888}
#curves{display:flex;flex-wrap:wrap;gap:12px}
.curve{background:#fff;border:1px solid #ddd;padding:6px}.curve h3{font-size:12px;margin:0 0 4px}
#error{color:#E15759}
</style></head><body>
<h1>dtrain coordinator</h1>
<div id="error"></div>
<h2>Cluster</h2><div id="cluster">loading...</div>
<h2>Jobs</h2>
<table><thead><tr><th>id</th><th>name</th><th>state</th><th>progress</th><th>ETA</th>
<th>loss</th><th>queue</th><th>attempt</th><th>reason</th></tr></thead><tbody id="jobs"></tbody></table>
<p style="font-size:11px;color:#666">Queue positions follow priority, then submission; aging and
backfill may start a later job first.</p>
<h2>Training loss</h2><div id="curves"></div>
<script>
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const headers = token ? {Authorization: "Bearer " + token} : {};
const progress = {};
function esc(s){return String(s).replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));}
function duration(s){if(!(s>=0))return "";s=Math.round(s);const h=Math.floor(s/3600),m=Math.floor(s/60)%60,r=s%60;
  return (h?h+":"+String(m).padStart(2,"0"):m)+":"+String(r).padStart(2,"0");}
async function get(path){const r=await fetch(path,{headers});if(!r.ok)throw new Error(path+": HTTP "+r.status+" "+await r.text());return r.json();}
function curveSvg(points){
  const W=360,H=150,L=40,B=20;
  if(points.length<1)return '<svg width="'+W+'" height="'+H+'"><text x="10" y="20" font-size="12">no steps yet</text></svg>';
  const xs=points.map(p=>p[0]),ys=points.map(p=>p[1]);
  const x0=Math.min(...xs),x1=Math.max(...xs,x0+1),y0=Math.min(...ys),y1=Math.max(...ys,y0+1e-9);
  const px=x=>L+(x-x0)/(x1-x0)*(W-L-8),py=y=>H-B-(y-y0)/(y1-y0)*(H-B-8);
  const d=points.map((p,i)=>(i?"L":"M")+px(p[0]).toFixed(1)+" "+py(p[1]).toFixed(1)).join(" ");
  return '<svg width="'+W+'" height="'+H+'"><rect x="'+L+'" y="4" width="'+(W-L-8)+'" height="'+(H-B-4)+'" fill="none" stroke="#bbb"/>'+
    '<path d="'+d+'" fill="none" stroke="#4E79A7" stroke-width="1.8"/>'+
    '<text x="2" y="12" font-size="10">'+y1.toPrecision(3)+'</text><text x="2" y="'+(H-B)+'" font-size="10">'+y0.toPrecision(3)+'</text>'+
    '<text x="'+L+'" y="'+(H-4)+'" font-size="10">step '+x0+'</text><text x="'+(W-60)+'" y="'+(H-4)+'" font-size="10">step '+x1+'</text></svg>';
}
async function refresh(){
  try{
    const o=await get("/api/overview");
    const c=o.cluster;
    document.getElementById("cluster").innerHTML='<span class="bar"><div style="width:'+(c.total_slots?100*c.used_slots/c.total_slots:0)+'%"></div></span> '+
      c.used_slots+' of '+c.total_slots+' slots used, '+c.queue_length+' job(s) queued'+
      c.hosts.map(h=>' &middot; '+esc(h.name)+' '+h.used+'/'+h.total).join("");
    const shown=o.jobs.filter(j=>j.state!=="pending"&&j.state!=="cancelled").sort((a,b)=>b.job_id-a.job_id).slice(0,6);
    const curves=await Promise.all(shown.map(j=>get("/api/jobs/"+j.job_id+"/curve").catch(()=>null)));
    curves.forEach((cv,i)=>{if(cv)progress[shown[i].job_id]=cv;});
    document.getElementById("jobs").innerHTML=o.jobs.sort((a,b)=>b.job_id-a.job_id).map(j=>{
      const p=progress[j.job_id]&&progress[j.job_id].progress||{};
      const f=j.state==="succeeded"?1:p.fraction;
      const bar=f>=0?'<span class="bar"><div style="width:'+(100*f).toFixed(1)+'%"></div></span> <span class="pct" data-job="'+j.job_id+'">'+(100*f).toFixed(0)+'%</span>'+
        (p.epochs?' epoch '+p.epoch+'/'+p.epochs:''):'';
      return '<tr><td>'+j.job_id+'</td><td>'+esc(j.name)+'</td><td class="state-'+j.state+'">'+j.state+'</td><td>'+bar+'</td>'+
        '<td>'+(j.state==="running"?duration(j.eta_s):"")+'</td><td>'+(j.loss>=0?j.loss.toFixed(4):"")+'</td>'+
        '<td>'+(j.queue_position||"")+'</td><td>'+j.attempt+'/'+j.max_attempts+'</td>'+
        '<td>'+esc(j.reason)+(j.state==="failed"?' (rank '+j.failing_rank+', exit '+j.exit_code+')':'')+'</td></tr>';}).join("");
    document.getElementById("curves").innerHTML=shown.map(j=>{const cv=progress[j.job_id];
      return '<div class="curve"><h3>job '+j.job_id+' '+esc(j.name)+' ('+j.state+')</h3>'+curveSvg(cv?cv.points:[])+'</div>';}).join("");
    document.getElementById("error").textContent="";
  }catch(e){document.getElementById("error").textContent=String(e);}
}
refresh();setInterval(refresh,1000);
</script></body></html>
)HTML";
  return page;
}

}  // namespace dtrain::http
