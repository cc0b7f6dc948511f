// The exported HTML report's page (churnlab report --format=html): draws the runs embedded in
// the file with report_view.js, as the dashboard does; one run as the dashboard's run section,
// several side by side and then each in full. It needs no network.
(function (C) {
  'use strict';

  const { el } = C.dom;
  const data = JSON.parse(document.getElementById('churnlab-data').textContent);
  const runs = (data.runs || []).map((report) => ({ report, points: report.series || [] }));
  const main = document.getElementById('report');
  const views = [];  // one per run, in order

  if (runs.length === 1) {
    const section = el('section');
    main.appendChild(section);
    views.push(new C.RunView(section, { ids: true }));
    views[0].update(runs[0]);
  } else {
    const compare = el('section');
    compare.id = 'compare';
    const view = el('div');
    compare.append(el('h2', `${runs.length} runs side by side`), view);
    main.appendChild(compare);
    new C.CompareView(view).update(runs);
    for (const run of runs) {
      const section = el('section', null, 'run');
      section.dataset.run = run.report.run_id;
      main.appendChild(section);
      views.push(new C.RunView(section));
      views[views.length - 1].update(run);
    }
  }
  window.churnlabReport = { views };  // for tests and the curious
  document.body.dataset.runs = String(runs.length);  // drawn
})(window.Churnlab);
